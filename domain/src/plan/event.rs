use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{PlanId, PriceId};
use crate::plan::{CreditAllowance, Interval};
use crate::tenant::Tenant;

/// What happened to a plan. Type names and payload shapes are stored forever: never rename or
/// reshape one; add a new version and an upcaster instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanEvent {
    /// `pricing_data` is kept as the merchant sent it (an object with a `components` array):
    /// its components are the merchant's vocabulary, read by invoicing, not by the plan.
    #[serde(rename_all = "camelCase")]
    PlanCreated {
        id: PlanId,
        price_id: PriceId,
        tenant: Tenant,
        name: String,
        description: Option<String>,
        currency: Currency,
        pricing_data: serde_json::Value,
        credit_allowance: Option<i64>,
        /// Added with billing; a plan stored before bills monthly, without a trial.
        #[serde(default)]
        interval: Interval,
        #[serde(default)]
        trial_days: u32,
        /// Added with credits: a plan stored before grants none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        credits: Vec<CreditAllowance>,
        at: DateTime<Utc>,
    },
}

impl PlanEvent {
    pub const CREATED: &'static str = "PlanCreated";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            PlanEvent::PlanCreated { at, .. } => *at,
        }
    }
}

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> String {
        match self {
            PlanEvent::PlanCreated { .. } => Self::CREATED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
