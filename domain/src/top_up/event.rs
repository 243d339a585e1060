use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::credit::FeatureSlug;
use crate::currency::Currency;
use crate::id::{PlanId, TopUpId};
use crate::tenant::Tenant;

/// What happened to a top-up. Type names and payload shapes are stored forever: never rename
/// or reshape one; add a new version and an upcaster instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopUpEvent {
    #[serde(rename_all = "camelCase")]
    TopUpCreated {
        id: TopUpId,
        tenant: Tenant,
        feature_slug: FeatureSlug,
        name: String,
        credits_per_unit: i64,
        unit_amount_cents: i64,
        currency: Currency,
        /// Empty: offered to every plan in its currency.
        plan_ids: Vec<PlanId>,
        expires_after_days: Option<u32>,
        max_quantity: i64,
        at: DateTime<Utc>,
    },
}

impl TopUpEvent {
    pub const CREATED: &'static str = "TopUpCreated";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TopUpEvent::TopUpCreated { at, .. } => *at,
        }
    }
}

impl DomainEvent for TopUpEvent {
    fn event_type(&self) -> String {
        match self {
            TopUpEvent::TopUpCreated { .. } => Self::CREATED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
