//! A plan's prices: how often it bills, and the typed components of `pricingData` that make
//! each period's invoice. New plans are checked strictly; a plan stored before the types
//! existed keeps working, its components that are not one of these ignored by invoicing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plan::PlanError;

/// The largest amount in cents one component may charge per unit: ten million of the currency.
pub const MAX_UNIT_AMOUNT_CENTS: i64 = 1_000_000_000;
/// The most components one plan may have.
const MAX_COMPONENTS: usize = 50;
const MAX_NAME_LEN: usize = 200;
const MAX_SLUG_LEN: usize = 64;

/// How long a period is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    #[default]
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }

    /// `month` or `year`; nothing given is a month.
    pub fn parse(raw: Option<&str>) -> Result<Interval, PlanError> {
        match raw.map(str::trim) {
            None => Ok(Interval::Month),
            Some("month") => Ok(Interval::Month),
            Some("year") => Ok(Interval::Year),
            Some(_) => Err(PlanError::InvalidInterval),
        }
    }
}

/// One priced part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingComponent {
    /// A fixed amount each period, billed in advance.
    Flat { name: String, amount_cents: i64 },
    /// An amount per seat (the subscription's quantity) each period, billed in advance.
    PerSeat {
        name: String,
        unit_amount_cents: i64,
    },
    /// An amount per unit of a feature used beyond the credits, billed in arrears.
    Usage {
        name: String,
        feature_slug: String,
        unit_amount_cents: i64,
    },
}

impl PricingComponent {
    /// What an invoice line calls it.
    pub fn name(&self) -> &str {
        match self {
            PricingComponent::Flat { name, .. }
            | PricingComponent::PerSeat { name, .. }
            | PricingComponent::Usage { name, .. } => name,
        }
    }
}

/// The components of `pricing_data`, every one checked: what a new plan must pass.
pub fn parse_components(pricing_data: &Value) -> Result<Vec<PricingComponent>, PlanError> {
    let components = pricing_data
        .get("components")
        .and_then(Value::as_array)
        .ok_or(PlanError::InvalidPricingData)?;
    if components.len() > MAX_COMPONENTS {
        return Err(PlanError::InvalidComponent(format!(
            "a plan has at most {MAX_COMPONENTS} pricing components"
        )));
    }
    components
        .iter()
        .enumerate()
        .map(|(index, component)| parse_component(component, index))
        .collect()
}

/// The components of a stored plan that invoicing understands; others are skipped, so a plan
/// made before components were typed keeps billing what it can.
pub fn invoiced_components(pricing_data: &Value) -> Vec<PricingComponent> {
    pricing_data
        .get("components")
        .and_then(Value::as_array)
        .map(|components| {
            components
                .iter()
                .enumerate()
                .filter_map(|(index, component)| parse_component(component, index).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parse_component(component: &Value, index: usize) -> Result<PricingComponent, PlanError> {
    let invalid = |what: &str| PlanError::InvalidComponent(format!("components[{index}]: {what}"));
    let object = component
        .as_object()
        .ok_or_else(|| invalid("must be an object"))?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("type must be flat, per_seat or usage"))?;
    let name = match object.get("name") {
        None | Some(Value::Null) => default_name(kind).to_owned(),
        Some(Value::String(name)) if !name.trim().is_empty() && name.len() <= MAX_NAME_LEN => {
            name.trim().to_owned()
        }
        Some(_) => return Err(invalid("name must be 1 to 200 characters")),
    };
    let cents = |field: &str| -> Result<i64, PlanError> {
        match object.get(field) {
            Some(Value::Number(number)) => number
                .as_i64()
                .filter(|cents| (0..=MAX_UNIT_AMOUNT_CENTS).contains(cents))
                .ok_or_else(|| {
                    invalid(&format!(
                        "{field} must be a whole number of cents from 0 to {MAX_UNIT_AMOUNT_CENTS}"
                    ))
                }),
            _ => Err(invalid(&format!("{field} is required (integer cents)"))),
        }
    };
    match kind {
        "flat" => Ok(PricingComponent::Flat {
            name,
            amount_cents: cents("amountCents")?,
        }),
        "per_seat" => Ok(PricingComponent::PerSeat {
            name,
            unit_amount_cents: cents("unitAmountCents")?,
        }),
        "usage" => {
            let feature_slug = object
                .get("featureSlug")
                .and_then(Value::as_str)
                .filter(|slug| is_slug(slug))
                .ok_or_else(|| {
                    invalid("featureSlug must be 1 to 64 lowercase letters, digits, _ or -")
                })?
                .to_owned();
            Ok(PricingComponent::Usage {
                name,
                feature_slug,
                unit_amount_cents: cents("unitAmountCents")?,
            })
        }
        _ => Err(invalid("type must be flat, per_seat or usage")),
    }
}

fn default_name(kind: &str) -> &'static str {
    match kind {
        "per_seat" => "Seats",
        "usage" => "Usage",
        _ => "Subscription",
    }
}

/// A feature's slug: lowercase letters, digits, `_` and `-`.
pub fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_SLUG_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
