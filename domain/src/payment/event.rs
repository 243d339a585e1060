use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, PaymentMethodId};
use crate::payment::PaymentKind;
use crate::provider::Provider;
use crate::tenant::Tenant;
use crate::top_up::TopUpPurchase;

/// What happened to a payment. Type names and payload shapes are stored forever: never
/// rename or reshape one; add a new version and an upcaster instead.
// Events are short-lived values, built once and written once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// `amount_cents` is signed as the API shows it: negative for a refund.
    #[serde(rename_all = "camelCase")]
    PaymentInitiated {
        id: PaymentId,
        tenant: Tenant,
        customer_id: CustomerId,
        invoice_id: Option<InvoiceId>,
        payment_method_id: Option<PaymentMethodId>,
        provider: Provider,
        kind: PaymentKind,
        amount_cents: i64,
        currency: Currency,
        refunded_payment_id: Option<PaymentId>,
        /// Added with top-ups: what a top-up's charge buys, made once it succeeds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top_up: Option<TopUpPurchase>,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PaymentSucceeded {
        provider_reference: Option<String>,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    PaymentFailed {
        error_message: String,
        error_code: Option<String>,
        at: DateTime<Utc>,
    },
}

impl PaymentEvent {
    pub const INITIATED: &'static str = "PaymentInitiated";
    pub const SUCCEEDED: &'static str = "PaymentSucceeded";
    pub const FAILED: &'static str = "PaymentFailed";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            PaymentEvent::PaymentInitiated { at, .. }
            | PaymentEvent::PaymentSucceeded { at, .. }
            | PaymentEvent::PaymentFailed { at, .. } => *at,
        }
    }
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentInitiated { .. } => Self::INITIATED,
            PaymentEvent::PaymentSucceeded { .. } => Self::SUCCEEDED,
            PaymentEvent::PaymentFailed { .. } => Self::FAILED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
