use std::collections::BTreeMap;

use crate::customer::DetailField;
use crate::id::CustomerId;
use crate::id::SubscriptionId;
use crate::tenant::Tenant;

/// What a caller can ask of a customer. Values arrive raw; the aggregate parses them, so a
/// command that passes carries only valid data into its events.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    CreateCustomer {
        id: CustomerId,
        tenant: Tenant,
        email: Option<String>,
        details: BTreeMap<DetailField, Option<String>>,
    },
    /// Only the fields present change. `email: None` leaves the email alone.
    UpdateCustomer {
        tenant: Tenant,
        email: Option<String>,
        details: BTreeMap<DetailField, Option<String>>,
        allow_shared_email: bool,
    },
    /// `canceled_subscriptions`: what a cascading delete canceled just before, for the record.
    DeleteCustomer {
        tenant: Tenant,
        canceled_subscriptions: Vec<SubscriptionId>,
    },
}

impl CustomerCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            CustomerCommand::CreateCustomer { tenant, .. }
            | CustomerCommand::UpdateCustomer { tenant, .. }
            | CustomerCommand::DeleteCustomer { tenant, .. } => tenant,
        }
    }
}
