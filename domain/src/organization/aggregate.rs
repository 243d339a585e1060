use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, OrganizationId};
use crate::organization::{
    OrgRole, OrganizationCommand, OrganizationError, OrganizationEvent, OrganizationServices,
};
use crate::tenant::Tenant;

/// An organization as its events describe it. `Default` is the organization that was never
/// created: cqrs-es loads an unknown id that way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: Option<OrganizationId>,
    pub tenant: Option<Tenant>,
    pub name: Option<String>,
    pub primary_customer_id: Option<CustomerId>,
    /// Seat members in the order they were added; the primary customer is not among them.
    pub member_ids: Vec<CustomerId>,
    pub created_at: Option<DateTime<Utc>>,
}

impl Organization {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// Every customer of the organization with their role: the primary first, then the
    /// members in the order they joined, as the seed's organization-customers lists them.
    pub fn members(&self) -> Vec<(CustomerId, OrgRole)> {
        let primary = self
            .primary_customer_id
            .iter()
            .map(|id| (id.clone(), OrgRole::Primary));
        let members = self
            .member_ids
            .iter()
            .map(|id| (id.clone(), OrgRole::Member));
        primary.chain(members).collect()
    }

    /// True for the primary customer as for a seat member.
    pub fn includes(&self, customer_id: &CustomerId) -> bool {
        self.primary_customer_id.as_ref() == Some(customer_id)
            || self.member_ids.contains(customer_id)
    }

    fn owned_by(&self, tenant: &Tenant) -> Result<(), OrganizationError> {
        match &self.tenant {
            Some(owner) if self.exists() && owner == tenant => Ok(()),
            _ => Err(OrganizationError::NotFound),
        }
    }
}

impl Aggregate for Organization {
    const TYPE: &'static str = "Organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = OrganizationServices;

    async fn handle(
        &mut self,
        command: OrganizationCommand,
        services: &OrganizationServices,
        sink: &EventSink<Self>,
    ) -> Result<(), OrganizationError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            OrganizationCommand::CreateOrganization {
                id,
                tenant,
                name,
                primary_customer_id,
            } => {
                if self.exists() {
                    return Err(OrganizationError::AlreadyExists);
                }
                let name = match name.as_deref().map(str::trim) {
                    Some(name) if !name.is_empty() => name.to_owned(),
                    _ => return Err(OrganizationError::NameRequired),
                };
                let event = OrganizationEvent::OrganizationCreated {
                    id,
                    tenant,
                    name,
                    primary_customer_id,
                    at,
                };
                sink.write(event, self).await;
            }
            OrganizationCommand::AddOrganizationMember {
                tenant,
                customer_id,
            } => {
                self.owned_by(&tenant)?;
                if self.includes(&customer_id) {
                    return Err(OrganizationError::AlreadyMember);
                }
                let event = OrganizationEvent::OrganizationMemberAdded { customer_id, at };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: OrganizationEvent) {
        match event {
            OrganizationEvent::OrganizationCreated {
                id,
                tenant,
                name,
                primary_customer_id,
                at,
            } => {
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.name = Some(name);
                self.primary_customer_id = Some(primary_customer_id);
                self.created_at = Some(at);
            }
            OrganizationEvent::OrganizationMemberAdded { customer_id, .. } => {
                self.member_ids.push(customer_id);
            }
        }
    }
}
