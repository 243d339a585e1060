use crate::currency::Currency;
use crate::id::{PlanId, TopUpId};
use crate::tenant::Tenant;

/// A plan a top-up is offered to, as the caller found it: the rules check its currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedPlan {
    pub id: PlanId,
    pub currency: Currency,
}

/// What a caller can ask of a top-up. Values arrive raw; the aggregate parses them.
#[derive(Debug, Clone, PartialEq)]
pub enum TopUpCommand {
    CreateTopUp {
        id: TopUpId,
        tenant: Tenant,
        feature_slug: Option<String>,
        name: Option<String>,
        credits_per_unit: Option<i64>,
        unit_amount_cents: Option<i64>,
        currency: Option<String>,
        /// None: offered to every plan in its currency (and to customers with no plan).
        plans: Vec<OfferedPlan>,
        expires_after_days: Option<i64>,
        max_quantity: Option<i64>,
    },
}

impl TopUpCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            TopUpCommand::CreateTopUp { tenant, .. } => tenant,
        }
    }
}
