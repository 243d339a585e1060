//! Stripe-Signature verification as an attacker would probe it.

use chrono::{DateTime, TimeZone, Utc};
use providers::stripe_webhook::{construct_event, sign, verify_signature, TOLERANCE_SECONDS};
use providers::StripeWebhookError;

const SECRET: &str = "whsec_endpoint_secret_for_tests";
const NOW: i64 = 1_750_000_000;
const BODY: &str = r#"{"id":"evt_1","object":"event","type":"setup_intent.succeeded","created":1750000000,"livemode":false,"data":{"object":{"id":"seti_1","customer":"cus_1","payment_method":"pm_1","metadata":{"billstream_customer_id":"cust_1"}}}}"#;

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(NOW, 0).unwrap()
}

fn verify(body: &str, header: &str) -> Result<(), StripeWebhookError> {
    verify_signature(body.as_bytes(), Some(header), SECRET, now())
}

#[test]
fn a_good_signature_is_accepted() {
    assert_eq!(verify(BODY, &sign(SECRET, NOW, BODY.as_bytes())), Ok(()));
}

#[test]
fn a_verified_event_is_parsed_and_its_setup_intent_read() {
    let header = sign(SECRET, NOW, BODY.as_bytes());
    let event = construct_event(BODY.as_bytes(), Some(&header), SECRET, now()).unwrap();
    assert_eq!(event.id, "evt_1");
    let intent = event.setup_intent_succeeded().unwrap();
    assert_eq!(intent.setup_intent_id, "seti_1");
    assert_eq!(intent.payment_method, "pm_1");
    assert_eq!(intent.metadata["billstream_customer_id"], "cust_1");
}

#[test]
fn a_signature_made_with_another_secret_is_refused() {
    let forged = sign("whsec_attacker", NOW, BODY.as_bytes());
    assert_eq!(
        verify(BODY, &forged),
        Err(StripeWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_tampered_body_is_refused() {
    let header = sign(SECRET, NOW, BODY.as_bytes());
    let tampered = BODY.replace("pm_1", "pm_evil");
    assert_eq!(
        verify(&tampered, &header),
        Err(StripeWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_timestamp_swapped_into_a_signed_header_is_refused() {
    // Replaying an old delivery with a fresh `t` must not work: `t` is in the signed content.
    let old = sign(SECRET, NOW - 3600, BODY.as_bytes());
    let v1 = old.split_once(",v1=").unwrap().1;
    let refreshed = format!("t={NOW},v1={v1}");
    assert_eq!(
        verify(BODY, &refreshed),
        Err(StripeWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_delivery_older_than_five_minutes_is_refused() {
    let timestamp = NOW - TOLERANCE_SECONDS - 1;
    let header = sign(SECRET, timestamp, BODY.as_bytes());
    assert_eq!(
        verify(BODY, &header),
        Err(StripeWebhookError::StaleTimestamp { timestamp })
    );
}

#[test]
fn a_delivery_more_than_five_minutes_in_the_future_is_refused() {
    let timestamp = NOW + TOLERANCE_SECONDS + 1;
    let header = sign(SECRET, timestamp, BODY.as_bytes());
    assert_eq!(
        verify(BODY, &header),
        Err(StripeWebhookError::FutureTimestamp { timestamp })
    );
}

#[test]
fn deliveries_at_the_edge_of_the_tolerance_are_accepted() {
    for timestamp in [NOW - TOLERANCE_SECONDS, NOW + TOLERANCE_SECONDS] {
        assert_eq!(
            verify(BODY, &sign(SECRET, timestamp, BODY.as_bytes())),
            Ok(())
        );
    }
}

#[test]
fn any_one_of_several_v1_signatures_may_match() {
    // While a secret is rolled, Stripe signs with the old and the new one.
    let good = sign(SECRET, NOW, BODY.as_bytes());
    let good_v1 = good.split_once(",v1=").unwrap().1;
    let other = sign("whsec_old_secret", NOW, BODY.as_bytes());
    let other_v1 = other.split_once(",v1=").unwrap().1;
    let header = format!("t={NOW},v1={other_v1},v1={good_v1}");
    assert_eq!(verify(BODY, &header), Ok(()));
}

#[test]
fn a_v0_signature_alone_is_not_trusted() {
    let good = sign(SECRET, NOW, BODY.as_bytes());
    let hex = good.split_once(",v1=").unwrap().1;
    let header = format!("t={NOW},v0={hex}");
    assert!(matches!(
        verify(BODY, &header),
        Err(StripeWebhookError::MalformedHeader(_))
    ));
}

#[test]
fn a_missing_header_is_refused() {
    assert_eq!(
        verify_signature(BODY.as_bytes(), None, SECRET, now()),
        Err(StripeWebhookError::MissingHeader)
    );
}

#[test]
fn malformed_headers_are_refused() {
    for header in [
        "",
        "nonsense",
        "t=,v1=abc",
        "t=yesterday,v1=abc",
        "v1=abc",
        &format!("t={NOW}"),
        &format!("t={NOW};v1=abc"),
    ] {
        assert!(
            matches!(
                verify(BODY, header),
                Err(StripeWebhookError::MalformedHeader(_))
            ),
            "{header:?} was not refused as malformed"
        );
    }
}

#[test]
fn a_signature_that_is_not_hex_does_not_match() {
    let header = format!("t={NOW},v1=not-hex-at-all");
    assert_eq!(
        verify(BODY, &header),
        Err(StripeWebhookError::SignatureMismatch)
    );
}

#[test]
fn a_verified_body_that_is_not_an_event_is_refused() {
    let body = "not json";
    let header = sign(SECRET, NOW, body.as_bytes());
    assert!(matches!(
        construct_event(body.as_bytes(), Some(&header), SECRET, now()),
        Err(StripeWebhookError::InvalidPayload(_))
    ));
}
