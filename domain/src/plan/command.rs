use crate::id::{PlanId, PriceId};
use crate::plan::AllowanceInput;
use crate::tenant::Tenant;

/// What a caller can ask of a plan. Values arrive raw; the aggregate parses them.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanCommand {
    CreatePlan {
        id: PlanId,
        price_id: PriceId,
        tenant: Tenant,
        name: Option<String>,
        description: Option<String>,
        currency: Option<String>,
        pricing_data: Option<serde_json::Value>,
        credit_allowance: Option<i64>,
        /// The credits it grants each period, per feature.
        credits: Vec<AllowanceInput>,
        /// `month` or `year`; none is a month.
        interval: Option<String>,
        trial_days: Option<i64>,
    },
}

impl PlanCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            PlanCommand::CreatePlan { tenant, .. } => tenant,
        }
    }
}
