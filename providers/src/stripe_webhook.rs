//! Stripe's webhook signatures and event envelope.
//!
//! Stripe signs each delivery with `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//! where each `v1` is HMAC-SHA256 over `"{t}.{raw body}"` keyed with the endpoint secret
//! (`whsec_…`) taken as raw bytes. Several `v1` entries appear while a secret is being rolled,
//! so any one matching is enough. The timestamp is inside the signed content, so checking it
//! against the clock stops a captured delivery from being replayed later.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// How far a delivery's timestamp may be from our clock, either way: Stripe's own default.
pub const TOLERANCE_SECONDS: i64 = 300;

pub const SETUP_INTENT_SUCCEEDED: &str = "setup_intent.succeeded";
pub const PAYMENT_INTENT_SUCCEEDED: &str = "payment_intent.succeeded";
pub const PAYMENT_INTENT_FAILED: &str = "payment_intent.payment_failed";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StripeWebhookError {
    #[error("the Stripe-Signature header is missing")]
    MissingHeader,
    #[error("the Stripe-Signature header is malformed: {0}")]
    MalformedHeader(&'static str),
    #[error("no signature in the Stripe-Signature header matches the payload")]
    SignatureMismatch,
    #[error("the webhook timestamp {timestamp} is more than five minutes old")]
    StaleTimestamp { timestamp: i64 },
    #[error("the webhook timestamp {timestamp} is more than five minutes in the future")]
    FutureTimestamp { timestamp: i64 },
    #[error("the webhook payload is not a Stripe event: {0}")]
    InvalidPayload(String),
    #[error("expected a {expected} event, got {found}")]
    UnexpectedEventType {
        expected: &'static str,
        found: String,
    },
}

/// Stripe's event envelope. The object stays JSON: each event type has its own shape, and the
/// helpers below read the ones billstream acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeEvent {
    /// `evt_…`; Stripe may deliver an event more than once, so this is the deduplication key.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    pub data: StripeEventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeEventData {
    pub object: serde_json::Value,
}

/// What billstream needs from a `setup_intent.succeeded` event to add the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupIntentSucceeded {
    pub setup_intent_id: String,
    pub customer: Option<String>,
    pub payment_method: String,
    pub metadata: BTreeMap<String, String>,
}

/// A `payment_intent.succeeded` or `payment_intent.payment_failed` event's payment intent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentIntentEvent {
    pub id: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentIntentError>,
}

/// Why a payment intent's last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentIntentError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Deserialize)]
struct SetupIntentObject {
    id: String,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    payment_method: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// Checks that `payload` was signed by Stripe with `secret` within the tolerance of `now`.
/// `header` is the `Stripe-Signature` value, `None` when the request had none.
pub fn verify_signature(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), StripeWebhookError> {
    let header = header.ok_or(StripeWebhookError::MissingHeader)?;
    let parsed = ParsedHeader::parse(header)?;

    let mac = signed_content_mac(secret, parsed.timestamp, payload);
    // `verify_slice` compares in constant time, so a forger learns nothing from our timing.
    let matched = parsed
        .signatures
        .iter()
        .filter_map(|hex_sig| hex::decode(hex_sig).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok());
    if !matched {
        return Err(StripeWebhookError::SignatureMismatch);
    }

    let age = i128::from(now.timestamp()) - i128::from(parsed.timestamp);
    if age > i128::from(TOLERANCE_SECONDS) {
        return Err(StripeWebhookError::StaleTimestamp {
            timestamp: parsed.timestamp,
        });
    }
    if -age > i128::from(TOLERANCE_SECONDS) {
        return Err(StripeWebhookError::FutureTimestamp {
            timestamp: parsed.timestamp,
        });
    }
    Ok(())
}

/// Verifies the signature, then parses the event. Never parse an unverified body.
pub fn construct_event(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<StripeEvent, StripeWebhookError> {
    verify_signature(payload, header, secret, now)?;
    serde_json::from_slice(payload).map_err(|e| StripeWebhookError::InvalidPayload(e.to_string()))
}

/// The `Stripe-Signature` value Stripe would send for `payload` at `timestamp`; for tests and
/// fakes.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let signature = signed_content_mac(secret, timestamp, payload)
        .finalize()
        .into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

fn signed_content_mac(secret: &str, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    // Stripe keys the HMAC with the whole secret string, `whsec_` prefix included.
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

struct ParsedHeader<'a> {
    timestamp: i64,
    signatures: Vec<&'a str>,
}

impl<'a> ParsedHeader<'a> {
    fn parse(header: &'a str) -> Result<Self, StripeWebhookError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in header.split(',') {
            let (key, value) =
                item.trim()
                    .split_once('=')
                    .ok_or(StripeWebhookError::MalformedHeader(
                        "expected key=value pairs",
                    ))?;
            match key {
                "t" => {
                    let t = value
                        .parse::<i64>()
                        .map_err(|_| StripeWebhookError::MalformedHeader("t is not a number"))?;
                    timestamp = Some(t);
                }
                "v1" => signatures.push(value),
                // Other schemes (`v0` test signatures, future ones) are not ours to trust.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(StripeWebhookError::MalformedHeader("no timestamp"))?;
        if signatures.is_empty() {
            return Err(StripeWebhookError::MalformedHeader("no v1 signature"));
        }
        Ok(Self {
            timestamp,
            signatures,
        })
    }
}

impl StripeEvent {
    /// Reads a payment intent event's payment intent.
    pub fn payment_intent(&self) -> Result<PaymentIntentEvent, StripeWebhookError> {
        serde_json::from_value(self.data.object.clone())
            .map_err(|e| StripeWebhookError::InvalidPayload(e.to_string()))
    }

    /// Reads a `setup_intent.succeeded` event's setup intent.
    pub fn setup_intent_succeeded(&self) -> Result<SetupIntentSucceeded, StripeWebhookError> {
        if self.event_type != SETUP_INTENT_SUCCEEDED {
            return Err(StripeWebhookError::UnexpectedEventType {
                expected: SETUP_INTENT_SUCCEEDED,
                found: self.event_type.clone(),
            });
        }
        let object: SetupIntentObject = serde_json::from_value(self.data.object.clone())
            .map_err(|e| StripeWebhookError::InvalidPayload(e.to_string()))?;
        let payment_method = object.payment_method.ok_or_else(|| {
            StripeWebhookError::InvalidPayload(
                "succeeded setup intent has no payment_method".into(),
            )
        })?;
        Ok(SetupIntentSucceeded {
            setup_intent_id: object.id,
            customer: object.customer,
            payment_method,
            metadata: object.metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SECRET: &str = "whsec_test_secret";

    fn at(t: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(t, 0).unwrap()
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        // Computed independently with Python's hmac module over b"1700000000.{}".
        assert_eq!(
            sign(SECRET, 1_700_000_000, b"{}"),
            "t=1700000000,v1=ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3"
        );
    }

    #[test]
    fn a_header_with_extra_schemes_and_spaces_still_parses() {
        let header = format!("{}, v0=deadbeef", sign(SECRET, 100, b"x"));
        assert!(verify_signature(b"x", Some(&header), SECRET, at(100)).is_ok());
    }

    #[test]
    fn a_header_without_timestamp_or_signature_is_malformed() {
        for header in ["v1=abcd", "t=100", "t=abc,v1=abcd", "garbage", ""] {
            assert!(
                matches!(
                    verify_signature(b"x", Some(header), SECRET, at(100)),
                    Err(StripeWebhookError::MalformedHeader(_))
                ),
                "{header:?}"
            );
        }
    }

    #[test]
    fn the_setup_intent_is_read_from_a_succeeded_event() {
        let event: StripeEvent = serde_json::from_value(serde_json::json!({
            "id": "evt_1", "type": "setup_intent.succeeded", "created": 1, "livemode": false,
            "data": {"object": {"id": "seti_1", "object": "setup_intent", "customer": "cus_1",
                "payment_method": "pm_1", "status": "succeeded",
                "metadata": {"billstream_customer_id": "cust_9"}}}
        }))
        .unwrap();
        let intent = event.setup_intent_succeeded().unwrap();
        assert_eq!(intent.setup_intent_id, "seti_1");
        assert_eq!(intent.customer.as_deref(), Some("cus_1"));
        assert_eq!(intent.payment_method, "pm_1");
        assert_eq!(intent.metadata["billstream_customer_id"], "cust_9");
    }

    #[test]
    fn another_event_type_is_not_read_as_a_setup_intent() {
        let event: StripeEvent = serde_json::from_value(serde_json::json!({
            "id": "evt_1", "type": "customer.created", "created": 1,
            "data": {"object": {"id": "cus_1"}}
        }))
        .unwrap();
        assert!(matches!(
            event.setup_intent_succeeded(),
            Err(StripeWebhookError::UnexpectedEventType { .. })
        ));
    }
}
