use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::credit::{FeatureSlug, MAX_CREDITS};
use crate::currency::Currency;
use crate::id::{PlanId, TopUpId};
use crate::money::MAX_AMOUNT_CENTS;
use crate::tenant::Tenant;
use crate::top_up::{
    OfferedPlan, PurchaseIds, TopUpCommand, TopUpError, TopUpEvent, TopUpPurchase, TopUpServices,
};

/// The most credits one unit of a top-up grants.
const MAX_CREDITS_PER_UNIT: i64 = 1_000_000_000;
/// The most units one purchase may buy, and the default when the merchant sets none: a
/// purchase is a click in the portal, not a bulk order.
const MAX_QUANTITY: i64 = 10_000;
const DEFAULT_MAX_QUANTITY: i64 = 100;
/// The longest a bought credit may last: ten years.
const MAX_EXPIRY_DAYS: i64 = 3650;

/// A top-up as its events describe it. `Default` is the top-up never created.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUp {
    pub id: Option<TopUpId>,
    pub tenant: Option<Tenant>,
    pub feature_slug: Option<FeatureSlug>,
    pub name: Option<String>,
    pub credits_per_unit: i64,
    pub unit_amount_cents: i64,
    pub currency: Option<Currency>,
    pub plan_ids: Vec<PlanId>,
    pub expires_after_days: Option<u32>,
    pub max_quantity: i64,
    pub created_at: Option<DateTime<Utc>>,
}

impl TopUp {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Whether a customer on `plan` (none: on no plan) may buy it. A top-up naming plans is
    /// offered on those; one naming none on every plan in its currency, and to a customer
    /// with no plan, who pays in whatever currency the top-up is priced.
    pub fn is_offered_to(&self, plan: Option<&OfferedPlan>) -> bool {
        self.currency
            .as_ref()
            .is_some_and(|currency| is_offered(&self.plan_ids, currency, plan))
    }

    /// `quantity` units of this top-up bought by `tenant` at `at`, priced and counted now,
    /// with the ids its invoice and grant will have.
    pub fn purchase(
        &self,
        tenant: &Tenant,
        quantity: Option<i64>,
        at: DateTime<Utc>,
        ids: PurchaseIds,
    ) -> Result<TopUpPurchase, TopUpError> {
        let (Some(id), Some(feature_slug), Some(name)) = (&self.id, &self.feature_slug, &self.name)
        else {
            return Err(TopUpError::NotFound);
        };
        if self.tenant.as_ref() != Some(tenant) {
            return Err(TopUpError::NotFound);
        }
        let quantity = quantity
            .filter(|quantity| (1..=self.max_quantity).contains(quantity))
            .ok_or(TopUpError::InvalidQuantity(self.max_quantity))?;
        // The bounds of the top-up's fields keep both products far from overflow; a product
        // beyond what a payment or a grant takes is refused all the same.
        let amount_ok = quantity
            .checked_mul(self.unit_amount_cents)
            .is_some_and(|amount| amount <= MAX_AMOUNT_CENTS);
        let credits = quantity
            .checked_mul(self.credits_per_unit)
            .filter(|credits| *credits <= MAX_CREDITS);
        let (true, Some(credits)) = (amount_ok, credits) else {
            return Err(TopUpError::InvalidQuantity(self.max_quantity));
        };
        Ok(TopUpPurchase {
            top_up_id: id.clone(),
            feature_slug: feature_slug.clone(),
            name: name.clone(),
            quantity,
            unit_amount_cents: self.unit_amount_cents,
            credits,
            purchased_at: at,
            expires_at: self
                .expires_after_days
                .map(|days| at + Duration::days(i64::from(days))),
            invoice_id: ids.invoice_id,
            grant_id: ids.grant_id,
        })
    }
}

/// Whether a top-up priced in `currency` and naming `plan_ids` is offered on `plan` (none: to
/// a customer on no plan), as [`TopUp::is_offered_to`] says; for callers holding a read
/// model's row rather than the aggregate.
pub fn is_offered(plan_ids: &[PlanId], currency: &Currency, plan: Option<&OfferedPlan>) -> bool {
    match plan {
        _ if !plan_ids.is_empty() => plan.is_some_and(|plan| plan_ids.contains(&plan.id)),
        Some(plan) => currency == &plan.currency,
        None => true,
    }
}

fn parse_name(raw: Option<&str>) -> Result<String, TopUpError> {
    match raw.map(str::trim) {
        Some(name) if !name.is_empty() && name.chars().count() <= 200 => Ok(name.to_owned()),
        _ => Err(TopUpError::InvalidName),
    }
}

impl Aggregate for TopUp {
    const TYPE: &'static str = "TopUp";
    type Command = TopUpCommand;
    type Event = TopUpEvent;
    type Error = TopUpError;
    type Services = TopUpServices;

    async fn handle(
        &mut self,
        command: TopUpCommand,
        services: &TopUpServices,
        sink: &EventSink<Self>,
    ) -> Result<(), TopUpError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            TopUpCommand::CreateTopUp {
                id,
                tenant,
                feature_slug,
                name,
                credits_per_unit,
                unit_amount_cents,
                currency,
                plans,
                expires_after_days,
                max_quantity,
            } => {
                if self.exists() {
                    return Err(TopUpError::AlreadyExists);
                }
                let feature_slug =
                    FeatureSlug::parse(feature_slug.as_deref().ok_or(TopUpError::FeatureRequired)?)
                        .map_err(|_| TopUpError::InvalidFeatureSlug)?;
                let name = parse_name(name.as_deref())?;
                let credits_per_unit = credits_per_unit
                    .filter(|credits| (1..=MAX_CREDITS_PER_UNIT).contains(credits))
                    .ok_or(TopUpError::InvalidCreditsPerUnit)?;
                let unit_amount_cents = unit_amount_cents
                    .filter(|cents| (1..=MAX_AMOUNT_CENTS).contains(cents))
                    .ok_or(TopUpError::InvalidUnitAmount)?;
                let currency = Currency::parse(currency.as_deref().unwrap_or(""))?;
                if let Some(plan) = plans.iter().find(|plan| plan.currency != currency) {
                    return Err(TopUpError::PlanCurrencyMismatch(
                        plan.id.to_string(),
                        plan.currency.as_str().to_owned(),
                    ));
                }
                let mut plan_ids: Vec<PlanId> = plans.into_iter().map(|plan| plan.id).collect();
                plan_ids.sort();
                plan_ids.dedup();
                let expires_after_days = match expires_after_days {
                    None => None,
                    Some(days) => Some(
                        u32::try_from(days)
                            .ok()
                            .filter(|days| (1..=MAX_EXPIRY_DAYS).contains(&i64::from(*days)))
                            .ok_or(TopUpError::InvalidExpiry)?,
                    ),
                };
                let max_quantity = match max_quantity {
                    None => DEFAULT_MAX_QUANTITY,
                    Some(max) if (1..=MAX_QUANTITY).contains(&max) => max,
                    Some(_) => return Err(TopUpError::InvalidMaxQuantity),
                };
                let event = TopUpEvent::TopUpCreated {
                    id,
                    tenant,
                    feature_slug,
                    name,
                    credits_per_unit,
                    unit_amount_cents,
                    currency,
                    plan_ids,
                    expires_after_days,
                    max_quantity,
                    at,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: TopUpEvent) {
        match event {
            TopUpEvent::TopUpCreated {
                id,
                tenant,
                feature_slug,
                name,
                credits_per_unit,
                unit_amount_cents,
                currency,
                plan_ids,
                expires_after_days,
                max_quantity,
                at,
            } => {
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.feature_slug = Some(feature_slug);
                self.name = Some(name);
                self.credits_per_unit = credits_per_unit;
                self.unit_amount_cents = unit_amount_cents;
                self.currency = Some(currency);
                self.plan_ids = plan_ids;
                self.expires_after_days = expires_after_days;
                self.max_quantity = max_quantity;
                self.created_at = Some(at);
            }
        }
    }
}
