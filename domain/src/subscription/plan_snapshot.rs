use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{PlanId, PriceId};
use crate::plan::Interval;

/// The plan as it was when the subscription started. A subscription is billed on the terms
/// the customer agreed to, so it keeps its own copy rather than following the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSnapshot {
    pub plan_id: PlanId,
    pub price_id: PriceId,
    pub name: String,
    pub description: Option<String>,
    pub currency: Currency,
    pub pricing_data: serde_json::Value,
    /// Added with billing; a snapshot stored before bills monthly, without a trial.
    #[serde(default)]
    pub interval: Interval,
    #[serde(default)]
    pub trial_days: u32,
}
