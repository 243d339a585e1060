use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{PlanId, PriceId};
use crate::plan::allowance::parse_allowances;
use crate::plan::pricing::parse_components;
use crate::plan::{CreditAllowance, Interval, PlanCommand, PlanError, PlanEvent, PlanServices};
use crate::subscription::PlanSnapshot;
use crate::tenant::Tenant;

/// A plan as its events describe it. `Default` is the plan that was never created: cqrs-es
/// loads an unknown id that way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub id: Option<PlanId>,
    pub price_id: Option<PriceId>,
    pub tenant: Option<Tenant>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub currency: Option<Currency>,
    pub pricing_data: Option<serde_json::Value>,
    pub credit_allowance: Option<i64>,
    #[serde(default)]
    pub interval: Interval,
    #[serde(default)]
    pub trial_days: u32,
    #[serde(default)]
    pub credits: Vec<CreditAllowance>,
    pub created_at: Option<DateTime<Utc>>,
}

impl Plan {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// What a subscription to this plan keeps of it, as `tenant` may see it: another tenant's
    /// plan, like one never created, has none.
    pub fn snapshot_for(&self, tenant: &Tenant) -> Option<PlanSnapshot> {
        if self.tenant.as_ref() != Some(tenant) {
            return None;
        }
        Some(PlanSnapshot {
            plan_id: self.id.clone()?,
            price_id: self.price_id.clone()?,
            name: self.name.clone()?,
            description: self.description.clone(),
            currency: self.currency.clone()?,
            pricing_data: self.pricing_data.clone()?,
            interval: self.interval,
            trial_days: self.trial_days,
        })
    }
}

/// The name, trimmed; blank counts as missing.
fn parse_name(raw: Option<&str>) -> Result<String, PlanError> {
    match raw.map(str::trim) {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(PlanError::NameRequired),
    }
}

/// `pricingData`, kept as the merchant sent it once each of its components is a valid flat,
/// per_seat or usage one (`pricing.rs`).
fn parse_pricing_data(raw: Option<serde_json::Value>) -> Result<serde_json::Value, PlanError> {
    let data = raw.ok_or(PlanError::InvalidPricingData)?;
    parse_components(&data)?;
    Ok(data)
}

/// Days of trial before the first invoice: up to two years.
fn parse_trial_days(raw: Option<i64>) -> Result<u32, PlanError> {
    match raw {
        None => Ok(0),
        Some(days) => u32::try_from(days)
            .ok()
            .filter(|days| *days <= 730)
            .ok_or(PlanError::InvalidTrialDays),
    }
}

impl Aggregate for Plan {
    const TYPE: &'static str = "Plan";
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = PlanError;
    type Services = PlanServices;

    async fn handle(
        &mut self,
        command: PlanCommand,
        services: &PlanServices,
        sink: &EventSink<Self>,
    ) -> Result<(), PlanError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            PlanCommand::CreatePlan {
                id,
                price_id,
                tenant,
                name,
                description,
                currency,
                pricing_data,
                credit_allowance,
                credits,
                interval,
                trial_days,
            } => {
                if self.exists() {
                    return Err(PlanError::AlreadyExists);
                }
                let name = parse_name(name.as_deref())?;
                let description = description
                    .as_deref()
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned);
                let currency = Currency::parse(currency.as_deref().unwrap_or(""))?;
                let pricing_data = parse_pricing_data(pricing_data)?;
                if credit_allowance.is_some_and(|credits| credits < 0) {
                    return Err(PlanError::InvalidCreditAllowance);
                }
                let interval = Interval::parse(interval.as_deref())?;
                let trial_days = parse_trial_days(trial_days)?;
                let credits = parse_allowances(credits)?;
                let event = PlanEvent::PlanCreated {
                    id,
                    price_id,
                    tenant,
                    name,
                    description,
                    currency,
                    pricing_data,
                    credit_allowance,
                    interval,
                    trial_days,
                    credits,
                    at,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: PlanEvent) {
        match event {
            PlanEvent::PlanCreated {
                id,
                price_id,
                tenant,
                name,
                description,
                currency,
                pricing_data,
                credit_allowance,
                interval,
                trial_days,
                credits,
                at,
            } => {
                self.credits = credits;
                self.id = Some(id);
                self.price_id = Some(price_id);
                self.tenant = Some(tenant);
                self.name = Some(name);
                self.description = description;
                self.currency = Some(currency);
                self.pricing_data = Some(pricing_data);
                self.credit_allowance = credit_allowance;
                self.interval = interval;
                self.trial_days = trial_days;
                self.created_at = Some(at);
            }
        }
    }
}
