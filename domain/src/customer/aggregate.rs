use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::customer::details::parse_changes;
use crate::customer::{
    CustomerCommand, CustomerDetails, CustomerError, CustomerEvent, CustomerServices, DetailField,
};
use crate::email::Email;
use crate::id::CustomerId;
use crate::tenant::Tenant;

/// A customer as its events describe it. `Default` is the customer that was never created:
/// cqrs-es loads an unknown id that way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: Option<CustomerId>,
    pub tenant: Option<Tenant>,
    pub email: Option<Email>,
    pub email_shared: bool,
    pub details: CustomerDetails,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Customer {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The customer as `tenant` may act on it: another tenant's customer does not exist for
    /// it, and a deleted one is gone.
    fn live_for(&self, tenant: &Tenant) -> Result<&CustomerId, CustomerError> {
        match (&self.id, &self.tenant) {
            (Some(id), Some(owner)) if owner == tenant => {
                if self.deleted_at.is_some() {
                    Err(CustomerError::AlreadyDeleted)
                } else {
                    Ok(id)
                }
            }
            _ => Err(CustomerError::NotFound),
        }
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = "Customer";
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CustomerError;
    type Services = CustomerServices;

    async fn handle(
        &mut self,
        command: CustomerCommand,
        services: &CustomerServices,
        sink: &EventSink<Self>,
    ) -> Result<(), CustomerError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            CustomerCommand::CreateCustomer {
                id,
                tenant,
                email,
                details,
            } => {
                if self.exists() {
                    return Err(CustomerError::AlreadyExists);
                }
                let email = Email::parse(email.as_deref().unwrap_or(""))?;
                let details = CustomerDetails::parse(&details)?;
                // Creation does not ask the uniqueness port: the event store's claims refuse a
                // taken email or external id atomically with the append (as `EmailTaken` and
                // `ExternalIdTaken`), and asking first would cost every create a round trip
                // while deciding nothing the claims do not decide again.
                let event = CustomerEvent::CustomerCreated {
                    id,
                    tenant,
                    email,
                    details,
                    at,
                };
                sink.write(event, self).await;
            }
            CustomerCommand::UpdateCustomer {
                tenant,
                email,
                details,
                allow_shared_email,
            } => {
                let id = self.live_for(&tenant)?.clone();
                let new_email = email.as_deref().map(Email::parse).transpose()?;
                let mut changes = parse_changes(&details)?;
                changes.retain(|field, value| self.details.get(*field) != value.as_deref());

                let email_changes = new_email.filter(|e| self.email.as_ref() != Some(e));
                if let Some(email) = &email_changes {
                    if !allow_shared_email
                        && services
                            .uniqueness
                            .email_in_use(&tenant, email, Some(&id))
                            .await?
                    {
                        return Err(CustomerError::EmailTakenByAnother);
                    }
                }
                if let Some(Some(external_id)) = changes.get(&DetailField::ExternalCustomerId) {
                    if services
                        .uniqueness
                        .external_id_in_use(&tenant, external_id, Some(&id))
                        .await?
                    {
                        return Err(CustomerError::ExternalIdTaken);
                    }
                }
                if let Some(email) = email_changes {
                    let event = CustomerEvent::EmailChanged {
                        email,
                        shared: allow_shared_email,
                        at,
                    };
                    sink.write(event, self).await;
                }
                if !changes.is_empty() {
                    let event = CustomerEvent::CustomerDetailsUpdated { changes, at };
                    sink.write(event, self).await;
                }
            }
            CustomerCommand::DeleteCustomer {
                tenant,
                canceled_subscriptions,
            } => {
                self.live_for(&tenant)?;
                let event = CustomerEvent::SoftDeleted {
                    at,
                    canceled_subscriptions,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: CustomerEvent) {
        match event {
            CustomerEvent::CustomerCreated {
                id,
                tenant,
                email,
                details,
                at,
            } => {
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.email = Some(email);
                self.details = details;
                self.created_at = Some(at);
                self.updated_at = Some(at);
            }
            CustomerEvent::EmailChanged { email, shared, at } => {
                self.email = Some(email);
                self.email_shared = shared;
                self.updated_at = Some(at);
            }
            CustomerEvent::CustomerDetailsUpdated { changes, at } => {
                self.details.apply(&changes);
                self.updated_at = Some(at);
            }
            CustomerEvent::SoftDeleted { at, .. } => {
                self.deleted_at = Some(at);
                self.updated_at = Some(at);
            }
        }
    }
}
