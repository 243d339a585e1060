use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::payment_method::Card;
use crate::provider::Provider;
use crate::tenant::Tenant;

/// What happened to a payment method. Type names and payload shapes are stored forever: never
/// rename or reshape one; add a new version and an upcaster instead.
// Events are short-lived values, built once and written once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentMethodEvent {
    #[serde(rename_all = "camelCase")]
    PaymentMethodAdded {
        id: PaymentMethodId,
        tenant: Tenant,
        customer_id: CustomerId,
        provider: Provider,
        payment_type: String,
        card: Option<Card>,
        provider_reference: Option<String>,
        at: DateTime<Utc>,
    },
    /// Replaces any earlier link: a payment method is linked to one subscription at a time.
    #[serde(rename_all = "camelCase")]
    PaymentMethodLinked {
        subscription_id: SubscriptionId,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PaymentMethodUnlinked {
        subscription_id: SubscriptionId,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PaymentMethodRemoved { at: DateTime<Utc> },
}

impl PaymentMethodEvent {
    pub const ADDED: &'static str = "PaymentMethodAdded";
    pub const LINKED: &'static str = "PaymentMethodLinked";
    pub const UNLINKED: &'static str = "PaymentMethodUnlinked";
    pub const REMOVED: &'static str = "PaymentMethodRemoved";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            PaymentMethodEvent::PaymentMethodAdded { at, .. }
            | PaymentMethodEvent::PaymentMethodLinked { at, .. }
            | PaymentMethodEvent::PaymentMethodUnlinked { at, .. }
            | PaymentMethodEvent::PaymentMethodRemoved { at } => *at,
        }
    }
}

impl DomainEvent for PaymentMethodEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentMethodEvent::PaymentMethodAdded { .. } => Self::ADDED,
            PaymentMethodEvent::PaymentMethodLinked { .. } => Self::LINKED,
            PaymentMethodEvent::PaymentMethodUnlinked { .. } => Self::UNLINKED,
            PaymentMethodEvent::PaymentMethodRemoved { .. } => Self::REMOVED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
