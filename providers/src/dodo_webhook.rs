//! Dodo Payments' webhook payload, after its Standard Webhooks signature has been verified
//! (see [`crate::standard_webhooks`]).
//!
//! Every delivery is `{"business_id", "type", "timestamp", "data"}`, where `data` is the full
//! object the event is about and names its kind in `data.payload_type` (`Subscription`,
//! `Payment`, …). Event names and payload fields are from
//! <https://docs.dodopayments.com/developer-resources/webhooks/intents> and the outgoing-webhook
//! reference <https://docs.dodopayments.com/api-reference/misc/outgoing-webhooks>.
//!
//! For billstream's mandate flow: after the customer completes the payment link of
//! `update-payment-method`, Dodo sends `subscription.updated` (an active subscription now
//! charged to the new method, named by `payment_method_id`); for an `on_hold` subscription it
//! charges the dues and sends `payment.succeeded` (with the card's network and last four digits)
//! followed by `subscription.active`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dodo::{DodoPayment, DodoSubscription};

/// The event names billstream listens for.
pub mod event_types {
    pub const SUBSCRIPTION_ACTIVE: &str = "subscription.active";
    pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
    pub const SUBSCRIPTION_ON_HOLD: &str = "subscription.on_hold";
    pub const SUBSCRIPTION_RENEWED: &str = "subscription.renewed";
    pub const SUBSCRIPTION_PLAN_CHANGED: &str = "subscription.plan_changed";
    pub const SUBSCRIPTION_CANCELLED: &str = "subscription.cancelled";
    pub const SUBSCRIPTION_FAILED: &str = "subscription.failed";
    pub const SUBSCRIPTION_EXPIRED: &str = "subscription.expired";
    pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
    pub const PAYMENT_FAILED: &str = "payment.failed";
    pub const PAYMENT_PROCESSING: &str = "payment.processing";
    pub const PAYMENT_CANCELLED: &str = "payment.cancelled";
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DodoWebhookError {
    #[error("the webhook payload is not a Dodo event: {0}")]
    InvalidPayload(String),
    #[error("expected a {expected} payload, got {found}")]
    UnexpectedPayloadType {
        expected: &'static str,
        found: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DodoWebhookPayload {
    pub business_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the event happened, not when it was delivered.
    pub timestamp: DateTime<Utc>,
    pub data: serde_json::Value,
}

const SUBSCRIPTION: &str = "Subscription";
const PAYMENT: &str = "Payment";

impl DodoWebhookPayload {
    /// Parses a delivery body. Only call this on a body whose signature was verified.
    pub fn parse(body: &[u8]) -> Result<Self, DodoWebhookError> {
        serde_json::from_slice(body).map_err(|e| DodoWebhookError::InvalidPayload(e.to_string()))
    }

    /// The `data.payload_type`, when Dodo sent one.
    pub fn payload_type(&self) -> Option<&str> {
        self.data.get("payload_type").and_then(|v| v.as_str())
    }

    /// Reads `data` as a subscription (the `subscription.*` events).
    pub fn subscription(&self) -> Result<DodoSubscription, DodoWebhookError> {
        self.read(SUBSCRIPTION, "subscription.")
    }

    /// Reads `data` as a payment (the `payment.*` events).
    pub fn payment(&self) -> Result<DodoPayment, DodoWebhookError> {
        self.read(PAYMENT, "payment.")
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        payload_type: &'static str,
        event_prefix: &str,
    ) -> Result<T, DodoWebhookError> {
        // `payload_type` is authoritative when present; older payloads only have the event name.
        let is_expected = match self.payload_type() {
            Some(found) => found == payload_type,
            None => self.event_type.starts_with(event_prefix),
        };
        if !is_expected {
            return Err(DodoWebhookError::UnexpectedPayloadType {
                expected: payload_type,
                found: self
                    .payload_type()
                    .unwrap_or(self.event_type.as_str())
                    .to_owned(),
            });
        }
        serde_json::from_value(self.data.clone())
            .map_err(|e| DodoWebhookError::InvalidPayload(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn customer() -> serde_json::Value {
        json!({"customer_id": "cus_1", "email": "jane@example.com", "name": "Jane"})
    }

    #[test]
    fn a_subscription_event_is_read_with_its_payment_method() {
        let body = json!({
            "business_id": "bus_1", "type": "subscription.updated",
            "timestamp": "2025-08-04T05:36:41.609359Z",
            "data": {"payload_type": "Subscription", "subscription_id": "sub_1",
                "status": "active", "customer": customer(), "payment_method_id": "pm_9",
                "metadata": {"billstream_subscription_id": "sub_local"},
                "product_id": "pdt_1", "quantity": 1}
        });
        let payload = DodoWebhookPayload::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(payload.event_type, event_types::SUBSCRIPTION_UPDATED);
        let subscription = payload.subscription().unwrap();
        assert_eq!(subscription.subscription_id, "sub_1");
        assert_eq!(subscription.status, "active");
        assert_eq!(subscription.payment_method_id.as_deref(), Some("pm_9"));
        assert_eq!(subscription.customer.customer_id, "cus_1");
        assert_eq!(
            subscription.metadata["billstream_subscription_id"],
            "sub_local"
        );
    }

    #[test]
    fn a_payment_event_is_read_with_its_card() {
        let body = json!({
            "business_id": "bus_1", "type": "payment.succeeded",
            "timestamp": "2025-08-04T05:36:41Z",
            "data": {"payload_type": "Payment", "payment_id": "pay_1", "status": "succeeded",
                "customer": customer(), "subscription_id": "sub_1", "total_amount": 1999,
                "currency": "USD", "payment_method": "card", "card_network": "VISA",
                "card_last_four": "4242", "card_type": "CREDIT"}
        });
        let payment = DodoWebhookPayload::parse(body.to_string().as_bytes())
            .unwrap()
            .payment()
            .unwrap();
        assert_eq!(payment.card_last_four.as_deref(), Some("4242"));
        assert_eq!(payment.subscription_id.as_deref(), Some("sub_1"));
        assert_eq!(payment.total_amount, Some(1999));
    }

    #[test]
    fn a_payment_is_not_read_as_a_subscription() {
        let body = json!({
            "business_id": "bus_1", "type": "payment.succeeded",
            "timestamp": "2025-08-04T05:36:41Z",
            "data": {"payload_type": "Payment", "payment_id": "pay_1", "customer": customer()}
        });
        let payload = DodoWebhookPayload::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            payload.subscription(),
            Err(DodoWebhookError::UnexpectedPayloadType {
                expected: "Subscription",
                found: "Payment".into()
            })
        );
    }

    #[test]
    fn a_body_that_is_not_an_event_is_refused() {
        assert!(matches!(
            DodoWebhookPayload::parse(b"{\"hello\": 1}"),
            Err(DodoWebhookError::InvalidPayload(_))
        ));
    }
}
