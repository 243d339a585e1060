use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::subscription::PlanSnapshot;
use crate::tenant::Tenant;

/// What happened to a subscription. Type names and payload shapes are stored forever: never
/// rename or reshape one; add a new version and an upcaster instead.
// Events are short-lived values, built once and written once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    #[serde(rename_all = "camelCase")]
    SubscriptionStarted {
        id: SubscriptionId,
        tenant: Tenant,
        customer_id: CustomerId,
        plan: PlanSnapshot,
        payment_method_id: Option<PaymentMethodId>,
        /// Added with billing: a subscription started before has one seat, no trial, and
        /// periods counted from its start.
        #[serde(default = "one")]
        quantity: u32,
        #[serde(default)]
        trial_ends_at: Option<DateTime<Utc>>,
        #[serde(default)]
        current_period_start: Option<DateTime<Utc>>,
        #[serde(default)]
        current_period_end: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    /// A new period began (the trial's end, or the previous period's).
    #[serde(rename_all = "camelCase")]
    SubscriptionRenewed {
        period_start: DateTime<Utc>,
        period_end: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// It will be canceled when the current period ends, and not renewed.
    #[serde(rename_all = "camelCase")]
    SubscriptionCancelScheduled {
        cancel_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// `from` lets the caller unlink the old payment method without reading the state back.
    #[serde(rename_all = "camelCase")]
    SubscriptionPaymentMethodChanged {
        from: Option<PaymentMethodId>,
        to: PaymentMethodId,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    SubscriptionPastDue {
        grace_period_ends_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    SubscriptionReactivated { at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    SubscriptionCanceled { at: DateTime<Utc> },
}

impl SubscriptionEvent {
    pub const STARTED: &'static str = "SubscriptionStarted";
    pub const PAYMENT_METHOD_CHANGED: &'static str = "SubscriptionPaymentMethodChanged";
    pub const PAST_DUE: &'static str = "SubscriptionPastDue";
    pub const REACTIVATED: &'static str = "SubscriptionReactivated";
    pub const CANCELED: &'static str = "SubscriptionCanceled";
    pub const RENEWED: &'static str = "SubscriptionRenewed";
    pub const CANCEL_SCHEDULED: &'static str = "SubscriptionCancelScheduled";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            SubscriptionEvent::SubscriptionStarted { at, .. }
            | SubscriptionEvent::SubscriptionPaymentMethodChanged { at, .. }
            | SubscriptionEvent::SubscriptionPastDue { at, .. }
            | SubscriptionEvent::SubscriptionReactivated { at }
            | SubscriptionEvent::SubscriptionRenewed { at, .. }
            | SubscriptionEvent::SubscriptionCancelScheduled { at, .. }
            | SubscriptionEvent::SubscriptionCanceled { at } => *at,
        }
    }
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            SubscriptionEvent::SubscriptionStarted { .. } => Self::STARTED,
            SubscriptionEvent::SubscriptionPaymentMethodChanged { .. } => {
                Self::PAYMENT_METHOD_CHANGED
            }
            SubscriptionEvent::SubscriptionPastDue { .. } => Self::PAST_DUE,
            SubscriptionEvent::SubscriptionReactivated { .. } => Self::REACTIVATED,
            SubscriptionEvent::SubscriptionCanceled { .. } => Self::CANCELED,
            SubscriptionEvent::SubscriptionRenewed { .. } => Self::RENEWED,
            SubscriptionEvent::SubscriptionCancelScheduled { .. } => Self::CANCEL_SCHEDULED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

fn one() -> u32 {
    1
}
