use serde::{Deserialize, Serialize};

use crate::credit::FeatureSlug;
use crate::plan::PlanError;

/// The most credits a plan grants a period, per feature.
const MAX_ALLOWANCE: i64 = 1_000_000_000_000;
/// The most features a plan grants credits for.
const MAX_ALLOWANCES: usize = 50;

/// Credits a plan grants each period for a feature (source `subscription`): they expire at
/// the period's end unless `rollover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditAllowance {
    pub feature_slug: FeatureSlug,
    pub name: String,
    pub amount: i64,
    #[serde(default)]
    pub rollover: bool,
}

/// An allowance as the merchant sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowanceInput {
    pub feature_slug: Option<String>,
    pub name: Option<String>,
    pub amount: Option<i64>,
    pub rollover: Option<bool>,
}

/// The plan's allowances, each checked: a valid slug, once each, a name (the slug when none),
/// an amount from 1.
pub fn parse_allowances(inputs: Vec<AllowanceInput>) -> Result<Vec<CreditAllowance>, PlanError> {
    if inputs.len() > MAX_ALLOWANCES {
        return Err(PlanError::InvalidCredits(format!(
            "credits: at most {MAX_ALLOWANCES} features"
        )));
    }
    let mut allowances: Vec<CreditAllowance> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let at = |what: &str| PlanError::InvalidCredits(format!("credits[{index}]: {what}"));
        let slug = input
            .feature_slug
            .ok_or_else(|| at("featureSlug is required"))?;
        let feature_slug = FeatureSlug::parse(&slug).map_err(|e| at(&e.to_string()))?;
        if allowances.iter().any(|a| a.feature_slug == feature_slug) {
            return Err(at("a feature is granted once"));
        }
        let amount = input
            .amount
            .filter(|amount| (1..=MAX_ALLOWANCE).contains(amount))
            .ok_or_else(|| at("amount must be from 1 to 1000000000000"))?;
        let name = input
            .name
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| feature_slug.to_string());
        if name.chars().count() > 200 {
            return Err(at("name must be at most 200 characters"));
        }
        allowances.push(CreditAllowance {
            feature_slug,
            name,
            amount,
            rollover: input.rollover.unwrap_or(false),
        });
    }
    Ok(allowances)
}
