//! Standard Webhooks verification (Dodo's scheme) as an attacker would probe it.

use chrono::{DateTime, TimeZone, Utc};
use providers::dodo_webhook::DodoWebhookPayload;
use providers::standard_webhooks::{VerifiedWebhook, WebhookHeaders, TOLERANCE_SECONDS};
use providers::{StandardWebhookError, StandardWebhookSecret};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
const NOW: i64 = 1_750_000_000;
const BODY: &str = r#"{"business_id":"bus_1","type":"subscription.updated","timestamp":"2025-06-15T15:06:40Z","data":{"payload_type":"Subscription","subscription_id":"sub_1","status":"active","customer":{"customer_id":"cus_1","email":"jane@example.com","name":"Jane"},"payment_method_id":"pm_1"}}"#;

fn secret() -> StandardWebhookSecret {
    StandardWebhookSecret::parse(SECRET).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(NOW, 0).unwrap()
}

fn verify(
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &str,
) -> Result<VerifiedWebhook, StandardWebhookError> {
    let headers = WebhookHeaders {
        id,
        timestamp,
        signature,
    };
    secret().verify(&headers, body.as_bytes(), now())
}

fn signed(timestamp: i64) -> (String, String) {
    (
        timestamp.to_string(),
        secret().sign(ID, timestamp, BODY.as_bytes()),
    )
}

#[test]
fn a_good_signature_is_accepted_and_names_the_message() {
    let (timestamp, signature) = signed(NOW);
    let verified = verify(Some(ID), Some(&timestamp), Some(&signature), BODY).unwrap();
    assert_eq!(
        verified,
        VerifiedWebhook {
            id: ID.into(),
            timestamp: NOW
        }
    );
}

#[test]
fn a_verified_dodo_payload_is_parsed() {
    let (timestamp, signature) = signed(NOW);
    verify(Some(ID), Some(&timestamp), Some(&signature), BODY).unwrap();
    let payload = DodoWebhookPayload::parse(BODY.as_bytes()).unwrap();
    assert_eq!(payload.event_type, "subscription.updated");
    let subscription = payload.subscription().unwrap();
    assert_eq!(subscription.payment_method_id.as_deref(), Some("pm_1"));
}

#[test]
fn a_signature_made_with_another_secret_is_refused() {
    let attacker = StandardWebhookSecret::parse("whsec_YXR0YWNrZXJzIG93biBzZWNyZXQ=").unwrap();
    let forged = attacker.sign(ID, NOW, BODY.as_bytes());
    assert_eq!(
        verify(Some(ID), Some(&NOW.to_string()), Some(&forged), BODY),
        Err(StandardWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let (timestamp, signature) = signed(NOW);
    let tampered = BODY.replace("pm_1", "pm_evil");
    assert_eq!(
        verify(Some(ID), Some(&timestamp), Some(&signature), &tampered),
        Err(StandardWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_different_message_id_is_refused() {
    // The id is signed, so a delivery cannot be replayed under a fresh id to dodge dedup.
    let (timestamp, signature) = signed(NOW);
    assert_eq!(
        verify(Some("msg_other"), Some(&timestamp), Some(&signature), BODY),
        Err(StandardWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_swapped_timestamp_is_refused() {
    let (_, old_signature) = signed(NOW - 3600);
    assert_eq!(
        verify(Some(ID), Some(&NOW.to_string()), Some(&old_signature), BODY),
        Err(StandardWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_delivery_older_than_five_minutes_is_refused() {
    let stale = NOW - TOLERANCE_SECONDS - 1;
    let (timestamp, signature) = signed(stale);
    assert_eq!(
        verify(Some(ID), Some(&timestamp), Some(&signature), BODY),
        Err(StandardWebhookError::StaleTimestamp { timestamp: stale })
    );
}

#[test]
fn a_delivery_more_than_five_minutes_in_the_future_is_refused() {
    let future = NOW + TOLERANCE_SECONDS + 1;
    let (timestamp, signature) = signed(future);
    assert_eq!(
        verify(Some(ID), Some(&timestamp), Some(&signature), BODY),
        Err(StandardWebhookError::FutureTimestamp { timestamp: future })
    );
}

#[test]
fn deliveries_at_the_edge_of_the_tolerance_are_accepted() {
    for at in [NOW - TOLERANCE_SECONDS, NOW + TOLERANCE_SECONDS] {
        let (timestamp, signature) = signed(at);
        assert!(verify(Some(ID), Some(&timestamp), Some(&signature), BODY).is_ok());
    }
}

#[test]
fn any_one_of_several_signatures_may_match() {
    let (timestamp, good) = signed(NOW);
    let old = StandardWebhookSecret::parse("whsec_b2xkIHNlY3JldCBiZWluZyByb3RhdGVk")
        .unwrap()
        .sign(ID, NOW, BODY.as_bytes());
    let header = format!("{old} v1a,c29tZSBhc3ltbWV0cmljIHNpZw== {good}");
    assert!(verify(Some(ID), Some(&timestamp), Some(&header), BODY).is_ok());
}

#[test]
fn a_valid_signature_under_another_version_is_not_trusted() {
    let (timestamp, good) = signed(NOW);
    let relabelled = good.replacen("v1,", "v2,", 1);
    assert_eq!(
        verify(Some(ID), Some(&timestamp), Some(&relabelled), BODY),
        Err(StandardWebhookError::SignatureMismatch)
    );
}

#[test]
fn each_missing_header_is_named() {
    let (timestamp, signature) = signed(NOW);
    assert_eq!(
        verify(None, Some(&timestamp), Some(&signature), BODY),
        Err(StandardWebhookError::MissingHeader("webhook-id"))
    );
    assert_eq!(
        verify(Some(ID), None, Some(&signature), BODY),
        Err(StandardWebhookError::MissingHeader("webhook-timestamp"))
    );
    assert_eq!(
        verify(Some(ID), Some(&timestamp), None, BODY),
        Err(StandardWebhookError::MissingHeader("webhook-signature"))
    );
}

#[test]
fn a_malformed_timestamp_is_refused() {
    let (_, signature) = signed(NOW);
    for timestamp in ["", "soon", "1750000000.5", "2025-06-15T15:06:40Z"] {
        assert_eq!(
            verify(Some(ID), Some(timestamp), Some(&signature), BODY),
            Err(StandardWebhookError::MalformedTimestamp),
            "{timestamp:?}"
        );
    }
}

#[test]
fn a_signature_header_without_any_signature_is_refused() {
    for header in ["", "v1", "garbage"] {
        assert_eq!(
            verify(Some(ID), Some(&NOW.to_string()), Some(header), BODY),
            Err(StandardWebhookError::MalformedSignature),
            "{header:?}"
        );
    }
}

#[test]
fn a_signature_that_is_not_base64_does_not_match() {
    assert_eq!(
        verify(Some(ID), Some(&NOW.to_string()), Some("v1,***"), BODY),
        Err(StandardWebhookError::SignatureMismatch)
    );
}
