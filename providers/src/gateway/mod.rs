//! The payment gateway port: what billstream asks of a payment provider, whichever it is, so the
//! application layer holds a `dyn PaymentGateway` instead of matching on the provider.
//!
//! Everything here is plain values: the port knows nothing of billstream's domain. Each
//! implementation ([`SandboxGateway`], [`StripeGateway`], [`DodoGateway`]) speaks its
//! provider's API through the clients of this crate and answers in these types, with the
//! failures a caller must tell apart as [`GatewayError`] variants.

mod dodo;
mod sandbox;
mod stripe;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use thiserror::Error;

use crate::standard_webhooks::StandardWebhookError;
use crate::stripe_webhook::StripeWebhookError;

pub use self::dodo::DodoGateway;
pub use self::sandbox::SandboxGateway;
pub use self::stripe::{secret_key_serves_live, StripeGateway};

/// A payment provider as billstream uses it.
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// "sandbox", "stripe" or "dodo".
    fn name(&self) -> &'static str;

    /// Whether the account serves live mode (`Some(true)`), test mode (`Some(false)`), or
    /// cannot tell / any (`None`).
    ///
    /// Stripe: from the secret key's prefix (`sk_test_`/`rk_test_` test, `sk_live_`/`rk_live_`
    /// live, anything else `None`); Dodo: its configured mode; the sandbox: `None`.
    fn serves_live(&self) -> Option<bool>;

    /// Makes the provider's customer for one of ours and answers its id; `Ok(None)` when the
    /// provider keeps no customer of ours (the sandbox, Dodo). The same `idempotency_key` makes
    /// one customer however often it is sent.
    async fn create_customer(
        &self,
        customer: &CustomerDetails<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<String>, GatewayError>;

    /// Starts collecting a payment method: what the browser needs to let the customer enter it.
    async fn create_setup_intent(
        &self,
        request: &SetupIntentRequest<'_>,
    ) -> Result<SetupIntent, GatewayError>;

    /// Charges a payment method the provider holds. `request.payment_id` is the provider's
    /// idempotency key, so a retry never charges twice: it answers the first charge again.
    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<Charge, GatewayError>;

    /// Refunds (part of) a charge, idempotent by `request.refund_id`.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refund, GatewayError>;

    /// What the provider says of one of its payment methods (the card), for adding it to a
    /// customer.
    async fn describe_payment_method(
        &self,
        reference: &str,
        provider_customer: Option<&str>,
    ) -> Result<CollectedMethod, GatewayError>;

    /// Verifies a webhook delivery's signature and freshness at `now` over the raw body;
    /// nothing else is read before this passes. Refusals are [`GatewayError::Refused`].
    fn verify_delivery(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Delivery, GatewayError>;

    /// What a verified delivery means to billstream.
    fn interpret(&self, body: &[u8]) -> Result<Interpreted, GatewayError>;
}

/// One of our customers, as a provider's customer is made for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerDetails<'a> {
    /// Our customer id.
    pub id: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    /// Set on the provider's customer, so its dashboard and webhooks lead back to ours.
    pub metadata: &'a [(&'a str, &'a str)],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupIntentRequest<'a> {
    /// The provider's customer (Stripe requires one).
    pub provider_customer: Option<&'a str>,
    /// The provider's subscription whose payment method changes (Dodo requires one).
    pub provider_subscription: Option<&'a str>,
    /// Set on the provider's intent, so the webhook that completes it leads back to ours.
    pub metadata: &'a [(&'a str, &'a str)],
    /// Where a hosted page sends the customer back to.
    pub return_url: Option<&'a str>,
}

/// How the customer enters the payment method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupIntent {
    /// The sandbox: billstream confirms the intent itself, with the card.
    Local,
    /// Stripe.js confirms the SetupIntent in the browser; the card arrives by webhook.
    Stripe {
        intent_id: String,
        client_secret: String,
        publishable_key: Option<String>,
    },
    /// The customer enters the method on the provider's page; it arrives by webhook.
    HostedLink { url: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeRequest<'a> {
    /// Our payment id: the provider's idempotency key.
    pub payment_id: &'a str,
    /// Smallest currency unit.
    pub amount_cents: i64,
    /// ISO 4217, upper-case (sent lower-case to Stripe).
    pub currency: &'a str,
    pub provider_customer: Option<&'a str>,
    /// The provider's reference of the payment method; for the sandbox the card's last four
    /// digits. Dodo charges the subscription's mandate and does not read it.
    pub payment_method: &'a str,
    /// The provider's subscription (Dodo charges through one).
    pub provider_subscription: Option<&'a str>,
    pub description: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub provider_payment_id: String,
    pub status: ChargeStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeStatus {
    Succeeded,
    /// The provider settles it later and says so by webhook.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundRequest<'a> {
    /// Our refund id: the provider's idempotency key.
    pub refund_id: &'a str,
    /// The charge's [`Charge::provider_payment_id`].
    pub provider_payment_id: &'a str,
    /// Smallest currency unit.
    pub amount_cents: i64,
    /// ISO 4217, upper-case.
    pub currency: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub provider_refund_id: String,
    pub status: ChargeStatus,
}

/// A payment method as the provider describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedMethod {
    /// The provider's reference, to charge it by.
    pub reference: String,
    /// `card`, … or `mandate` when the provider does not say.
    pub payment_type: String,
    pub card: Option<CollectedCard>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedCard {
    /// Lower-case: `visa`, `mastercard`, `amex`, …
    pub brand: String,
    pub last_four: String,
    pub exp_month: u32,
    /// Four digits.
    pub exp_year: i32,
}

/// A webhook delivery whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's event (or message) id: the same across retries, the deduplication key.
    pub id: String,
    /// Whether the event is of live mode, when the provider says (Stripe does, Dodo does not).
    pub livemode: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreted {
    /// The provider's event type, e.g. `setup_intent.succeeded`.
    pub event_type: String,
    pub meaning: EventMeaning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventMeaning {
    /// A payment method was collected through a setup intent (Stripe `setup_intent.succeeded`);
    /// `metadata` is the intent's.
    PaymentMethodCollected {
        payment_method: String,
        metadata: BTreeMap<String, String>,
    },
    /// A provider subscription is charged to `payment_method` (Dodo `subscription.active`,
    /// `subscription.updated`); `metadata` is the subscription's.
    SubscriptionPaymentMethod {
        provider_subscription: String,
        provider_customer: String,
        payment_method: Option<String>,
        metadata: BTreeMap<String, String>,
    },
    /// A charge billstream asked for settled (Stripe `payment_intent.succeeded` or
    /// `payment_intent.payment_failed`): `payment_id` is billstream's own, from the intent's
    /// metadata; `failure` the code and message of a failed one.
    PaymentSettled {
        payment_id: String,
        provider_reference: String,
        failure: Option<(String, String)>,
    },
    /// The provider charged one of its subscriptions on its own (Dodo `payment.succeeded`,
    /// `payment.failed`): billstream records it against that subscription's open invoice.
    /// `failure` is the code and message of a failed one.
    SubscriptionCharged {
        provider_subscription: String,
        provider_payment_id: String,
        amount_cents: Option<i64>,
        failure: Option<(String, String)>,
    },
    /// Nothing billstream acts on.
    Other,
}

const INVALID_SIGNATURE: &str = "Invalid webhook signature";
const STALE: &str = "Webhook timestamp is outside the 5-minute tolerance";
const INVALID_PAYLOAD: &str = "Invalid webhook payload";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GatewayError {
    /// Stripe no longer has the customer (the merchant deleted it in Stripe): make a fresh one
    /// and retry.
    #[error("the provider no longer has the customer")]
    CustomerMissing,
    /// Dodo carries a mandate on a subscription, and the request named none.
    #[error("Active subscription required to add mandate for Dodo")]
    NeedsSubscription,
    /// The provider or the bank declined the charge.
    #[error("the charge was declined ({code}): {message}")]
    Declined { code: String, message: String },
    /// A webhook delivery was refused: a 400 with this code and message.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The account lacks what the call needs, e.g. webhooks without a secret.
    #[error("{0} is not configured")]
    NotConfigured(&'static str),
    /// The provider cannot do this.
    #[error("{0} is not supported")]
    Unsupported(&'static str),
    /// The provider could not be reached, or failed or refused the call.
    #[error("could not {action}: {detail}")]
    Failed {
        action: &'static str,
        detail: String,
    },
}

impl GatewayError {
    fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    fn invalid_payload() -> Self {
        Self::refused("invalid_payload", INVALID_PAYLOAD)
    }

    fn failed(action: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Failed {
            action,
            detail: detail.to_string(),
        }
    }
}

impl From<StripeWebhookError> for GatewayError {
    fn from(error: StripeWebhookError) -> Self {
        match error {
            StripeWebhookError::MissingHeader => {
                Self::refused("missing_signature", "Missing Stripe-Signature header")
            }
            StripeWebhookError::MalformedHeader(_) | StripeWebhookError::SignatureMismatch => {
                Self::refused("invalid_signature", INVALID_SIGNATURE)
            }
            StripeWebhookError::StaleTimestamp { .. }
            | StripeWebhookError::FutureTimestamp { .. } => Self::refused("stale_webhook", STALE),
            StripeWebhookError::InvalidPayload(_)
            | StripeWebhookError::UnexpectedEventType { .. } => Self::invalid_payload(),
        }
    }
}

impl From<StandardWebhookError> for GatewayError {
    fn from(error: StandardWebhookError) -> Self {
        match error {
            StandardWebhookError::MissingHeader(header) => {
                Self::refused("missing_signature", format!("Missing {header} header"))
            }
            StandardWebhookError::StaleTimestamp { .. }
            | StandardWebhookError::FutureTimestamp { .. } => Self::refused("stale_webhook", STALE),
            StandardWebhookError::InvalidSecret
            | StandardWebhookError::MalformedTimestamp
            | StandardWebhookError::MalformedSignature
            | StandardWebhookError::SignatureMismatch => {
                Self::refused("invalid_signature", INVALID_SIGNATURE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(error: impl Into<GatewayError>) -> (&'static str, String) {
        match error.into() {
            GatewayError::Refused { code, message } => (code, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn stripe_webhook_errors_are_refused_as_the_api_refuses_them() {
        let cases = [
            (
                StripeWebhookError::MissingHeader,
                "missing_signature",
                "Missing Stripe-Signature header",
            ),
            (
                StripeWebhookError::MalformedHeader("no timestamp"),
                "invalid_signature",
                INVALID_SIGNATURE,
            ),
            (
                StripeWebhookError::SignatureMismatch,
                "invalid_signature",
                INVALID_SIGNATURE,
            ),
            (
                StripeWebhookError::StaleTimestamp { timestamp: 1 },
                "stale_webhook",
                STALE,
            ),
            (
                StripeWebhookError::FutureTimestamp { timestamp: 1 },
                "stale_webhook",
                STALE,
            ),
            (
                StripeWebhookError::InvalidPayload("x".into()),
                "invalid_payload",
                INVALID_PAYLOAD,
            ),
            (
                StripeWebhookError::UnexpectedEventType {
                    expected: "a",
                    found: "b".into(),
                },
                "invalid_payload",
                INVALID_PAYLOAD,
            ),
        ];
        for (error, code, message) in cases {
            assert_eq!(refusal(error), (code, message.to_owned()));
        }
    }

    #[test]
    fn standard_webhook_errors_are_refused_as_the_api_refuses_them() {
        let cases = [
            (
                StandardWebhookError::MissingHeader("webhook-id"),
                "missing_signature",
                "Missing webhook-id header",
            ),
            (
                StandardWebhookError::StaleTimestamp { timestamp: 1 },
                "stale_webhook",
                STALE,
            ),
            (
                StandardWebhookError::FutureTimestamp { timestamp: 1 },
                "stale_webhook",
                STALE,
            ),
            (
                StandardWebhookError::InvalidSecret,
                "invalid_signature",
                INVALID_SIGNATURE,
            ),
            (
                StandardWebhookError::MalformedTimestamp,
                "invalid_signature",
                INVALID_SIGNATURE,
            ),
            (
                StandardWebhookError::MalformedSignature,
                "invalid_signature",
                INVALID_SIGNATURE,
            ),
            (
                StandardWebhookError::SignatureMismatch,
                "invalid_signature",
                INVALID_SIGNATURE,
            ),
        ];
        for (error, code, message) in cases {
            assert_eq!(refusal(error), (code, message.to_owned()));
        }
    }
}
