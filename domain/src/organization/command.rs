use crate::id::{CustomerId, OrganizationId};
use crate::tenant::Tenant;

/// What a caller can ask of an organization. That each customer exists and belongs to the
/// tenant is checked by the caller, which loads it.
#[derive(Debug, Clone, PartialEq)]
pub enum OrganizationCommand {
    CreateOrganization {
        id: OrganizationId,
        tenant: Tenant,
        name: Option<String>,
        primary_customer_id: CustomerId,
    },
    AddOrganizationMember {
        tenant: Tenant,
        customer_id: CustomerId,
    },
}

impl OrganizationCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            OrganizationCommand::CreateOrganization { tenant, .. }
            | OrganizationCommand::AddOrganizationMember { tenant, .. } => tenant,
        }
    }
}
