use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::customer::{CustomerDetails, DetailChanges};
use crate::email::Email;
use crate::id::{CustomerId, SubscriptionId};
use crate::tenant::Tenant;

/// What happened to a customer. Type names and payload shapes are stored forever: never
/// rename or reshape one; add a new version and an upcaster instead.
// Events are short-lived values, built once and written once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    #[serde(rename_all = "camelCase")]
    CustomerCreated {
        id: CustomerId,
        tenant: Tenant,
        email: Email,
        details: CustomerDetails,
        at: DateTime<Utc>,
    },
    /// `shared` records that the merchant allowed another live customer to have this email.
    #[serde(rename_all = "camelCase")]
    EmailChanged {
        email: Email,
        shared: bool,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    CustomerDetailsUpdated {
        changes: DetailChanges,
        at: DateTime<Utc>,
    },
    /// Version 2 added `canceled_subscriptions`: the subscriptions a cascading delete
    /// canceled first. Version 1 events read back with none (see `upcast.rs`).
    #[serde(rename_all = "camelCase")]
    SoftDeleted {
        at: DateTime<Utc>,
        canceled_subscriptions: Vec<SubscriptionId>,
    },
}

impl CustomerEvent {
    pub const CREATED: &'static str = "CustomerCreated";
    pub const EMAIL_CHANGED: &'static str = "EmailChanged";
    pub const DETAILS_UPDATED: &'static str = "CustomerDetailsUpdated";
    pub const SOFT_DELETED: &'static str = "SoftDeleted";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            CustomerEvent::CustomerCreated { at, .. }
            | CustomerEvent::EmailChanged { at, .. }
            | CustomerEvent::CustomerDetailsUpdated { at, .. }
            | CustomerEvent::SoftDeleted { at, .. } => *at,
        }
    }
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            CustomerEvent::CustomerCreated { .. } => Self::CREATED,
            CustomerEvent::EmailChanged { .. } => Self::EMAIL_CHANGED,
            CustomerEvent::CustomerDetailsUpdated { .. } => Self::DETAILS_UPDATED,
            CustomerEvent::SoftDeleted { .. } => Self::SOFT_DELETED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            CustomerEvent::SoftDeleted { .. } => "2",
            _ => "1",
        }
        .to_owned()
    }
}
