use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, OrganizationId};
use crate::tenant::Tenant;

/// What happened to an organization. Type names and payload shapes are stored forever: never
/// rename or reshape one; add a new version and an upcaster instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    #[serde(rename_all = "camelCase")]
    OrganizationCreated {
        id: OrganizationId,
        tenant: Tenant,
        name: String,
        primary_customer_id: CustomerId,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    OrganizationMemberAdded {
        customer_id: CustomerId,
        at: DateTime<Utc>,
    },
}

impl OrganizationEvent {
    pub const CREATED: &'static str = "OrganizationCreated";
    pub const MEMBER_ADDED: &'static str = "OrganizationMemberAdded";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            OrganizationEvent::OrganizationCreated { at, .. }
            | OrganizationEvent::OrganizationMemberAdded { at, .. } => *at,
        }
    }
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        match self {
            OrganizationEvent::OrganizationCreated { .. } => Self::CREATED,
            OrganizationEvent::OrganizationMemberAdded { .. } => Self::MEMBER_ADDED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
