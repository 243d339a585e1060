use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::json;

use crate::clock::FixedClock;
use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, PaymentMethodId};
use crate::payment::{
    Payment, PaymentCommand, PaymentError, PaymentEvent, PaymentKind, PaymentServices,
    PaymentStatus, SettlementOutcome,
};
use crate::provider::Provider;
use crate::tenant::{Mode, Tenant};

type PaymentTester = TestFramework<Payment>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn later() -> DateTime<Utc> {
    now() + Duration::seconds(3)
}

/// Settlements come a little after the payment was initiated.
fn services_at(at: DateTime<Utc>) -> PaymentServices {
    PaymentServices {
        clock: Arc::new(FixedClock(at)),
    }
}

fn services() -> PaymentServices {
    services_at(now())
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn other_tenant() -> Tenant {
    Tenant::new("merchant_2", Mode::Test)
}

fn pay(n: u32) -> PaymentId {
    PaymentId::parse(&format!("pay_{n}")).unwrap()
}

fn initiate(kind: PaymentKind, amount_cents: i64, refunded: Option<u32>) -> PaymentCommand {
    PaymentCommand::Initiate {
        id: pay(1),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        invoice_id: Some(InvoiceId::parse("inv_1").unwrap()),
        payment_method_id: Some(PaymentMethodId::parse("pm_1").unwrap()),
        provider: Provider::Stripe,
        kind,
        amount_cents,
        currency: Currency::parse("EUR").unwrap(),
        refunded_payment_id: refunded.map(pay),
        top_up: None,
    }
}

fn initiated(kind: PaymentKind, amount_cents: i64, refunded: Option<u32>) -> PaymentEvent {
    PaymentEvent::PaymentInitiated {
        id: pay(1),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        invoice_id: Some(InvoiceId::parse("inv_1").unwrap()),
        payment_method_id: Some(PaymentMethodId::parse("pm_1").unwrap()),
        provider: Provider::Stripe,
        kind,
        amount_cents,
        currency: Currency::parse("EUR").unwrap(),
        refunded_payment_id: refunded.map(pay),
        top_up: None,
        at: now(),
    }
}

fn charge_initiated() -> PaymentEvent {
    initiated(PaymentKind::Charge, 2900, None)
}

fn succeeded() -> PaymentEvent {
    PaymentEvent::PaymentSucceeded {
        provider_reference: Some("pi_123".into()),
        at: later(),
    }
}

fn failed() -> PaymentEvent {
    PaymentEvent::PaymentFailed {
        error_message: "Your card was declined.".into(),
        error_code: Some("card_declined".into()),
        at: later(),
    }
}

fn settle_succeeded(reference: &str) -> PaymentCommand {
    PaymentCommand::Settle {
        tenant: tenant(),
        outcome: SettlementOutcome::Succeeded {
            provider_reference: Some(reference.into()),
        },
    }
}

fn settle_failed(message: &str, code: &str) -> PaymentCommand {
    PaymentCommand::Settle {
        tenant: tenant(),
        outcome: SettlementOutcome::Failed {
            message: message.into(),
            code: Some(code.into()),
        },
    }
}

fn state_after(events: Vec<PaymentEvent>) -> Payment {
    let mut payment = Payment::default();
    events.into_iter().for_each(|e| payment.apply(e));
    payment
}

#[test]
fn initiate_records_a_pending_charge() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate(PaymentKind::Charge, 2900, None))
        .then_expect_events(vec![charge_initiated()]);

    let payment = state_after(vec![charge_initiated()]);
    assert_eq!(payment.status, Some(PaymentStatus::Pending));
    assert_eq!(payment.amount_cents, 2900);
    assert_eq!(payment.created_at, Some(now()));
    assert!(!payment.is_settled());
}

#[test]
fn initiate_a_refund_stores_its_amount_negative() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate(PaymentKind::Refund, 900, Some(7)))
        .then_expect_events(vec![initiated(PaymentKind::Refund, -900, Some(7))]);
}

#[test]
fn initiate_is_refused_when_the_id_already_exists() {
    PaymentTester::with(services())
        .given(vec![charge_initiated()])
        .when(initiate(PaymentKind::Charge, 2900, None))
        .then_expect_error_message("Payment already exists");
}

#[test]
fn initiate_is_refused_when_the_amount_is_not_between_1_and_10_to_the_12() {
    for amount in [0, -2900, 1_000_000_000_001] {
        for (kind, refunded) in [(PaymentKind::Charge, None), (PaymentKind::Refund, Some(7))] {
            PaymentTester::with(services())
                .given_no_previous_events()
                .when(initiate(kind, amount, refunded))
                .then_expect_error(PaymentError::InvalidAmount);
        }
    }
}

#[test]
fn initiate_a_refund_is_refused_without_the_payment_it_refunds() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate(PaymentKind::Refund, 900, None))
        .then_expect_error_message("A refund needs the payment it refunds");
}

#[test]
fn initiate_a_charge_is_refused_when_it_names_a_payment_to_refund() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate(PaymentKind::Charge, 900, Some(7)))
        .then_expect_error(PaymentError::ChargeRefundsNothing);
}

#[test]
fn settle_as_succeeded_records_the_provider_reference_and_the_time() {
    PaymentTester::with(services_at(later()))
        .given(vec![charge_initiated()])
        .when(settle_succeeded("pi_123"))
        .then_expect_events(vec![succeeded()]);

    let payment = state_after(vec![charge_initiated(), succeeded()]);
    assert_eq!(payment.status, Some(PaymentStatus::Succeeded));
    assert_eq!(payment.provider_reference.as_deref(), Some("pi_123"));
    assert_eq!(payment.settled_at, Some(later()));
    assert!(payment.is_settled());
}

#[test]
fn settle_as_failed_records_the_message_and_code() {
    PaymentTester::with(services_at(later()))
        .given(vec![charge_initiated()])
        .when(settle_failed("Your card was declined.", "card_declined"))
        .then_expect_events(vec![failed()]);

    let payment = state_after(vec![charge_initiated(), failed()]);
    assert_eq!(payment.status, Some(PaymentStatus::Failed));
    assert_eq!(
        payment.error_message.as_deref(),
        Some("Your card was declined.")
    );
    assert_eq!(payment.error_code.as_deref(), Some("card_declined"));
    assert_eq!(payment.settled_at, Some(later()));
}

#[test]
fn settle_again_with_the_same_outcome_records_nothing() {
    PaymentTester::with(services_at(later()))
        .given(vec![charge_initiated(), succeeded()])
        .when(settle_succeeded("pi_123"))
        .then_expect_events(vec![]);
    PaymentTester::with(services_at(later()))
        .given(vec![charge_initiated(), failed()])
        .when(settle_failed(
            "Your card has insufficient funds.",
            "insufficient_funds",
        ))
        .then_expect_events(vec![]);
}

#[test]
fn settle_with_the_other_outcome_is_refused() {
    PaymentTester::with(services_at(later()))
        .given(vec![charge_initiated(), succeeded()])
        .when(settle_failed("Your card was declined.", "card_declined"))
        .then_expect_error_message("Payment is already settled");
    PaymentTester::with(services_at(later()))
        .given(vec![charge_initiated(), failed()])
        .when(settle_succeeded("pi_123"))
        .then_expect_error(PaymentError::AlreadySettled);
}

#[test]
fn settle_is_refused_when_the_payment_was_never_initiated_or_is_another_tenants() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(settle_succeeded("pi_123"))
        .then_expect_error_message("Payment not found");
    PaymentTester::with(services())
        .given(vec![charge_initiated()])
        .when(PaymentCommand::Settle {
            tenant: other_tenant(),
            outcome: SettlementOutcome::Succeeded {
                provider_reference: None,
            },
        })
        .then_expect_error(PaymentError::NotFound);
}

#[test]
fn kinds_and_statuses_are_stored_in_snake_case() {
    for kind in [PaymentKind::Charge, PaymentKind::Refund] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    for status in [
        PaymentStatus::Pending,
        PaymentStatus::Succeeded,
        PaymentStatus::Failed,
    ] {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
}

#[test]
fn every_stored_payment_event_is_named_by_its_type_and_reads_back_equal() {
    let events = [
        initiated(PaymentKind::Refund, -900, Some(7)),
        succeeded(),
        failed(),
    ];
    let names: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
    assert_eq!(
        names,
        ["PaymentInitiated", "PaymentSucceeded", "PaymentFailed"]
    );
    for event in events {
        assert_eq!(event.event_version(), "1");
        let stored = serde_json::to_value(&event).unwrap();
        let keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
        assert_eq!(keys, [&event.event_type()]);
        assert_eq!(
            serde_json::from_value::<PaymentEvent>(stored).unwrap(),
            event
        );
    }
}

#[test]
fn stored_payment_events_are_camel_case() {
    assert_eq!(
        serde_json::to_value(initiated(PaymentKind::Refund, -900, Some(7))).unwrap(),
        json!({"PaymentInitiated": {
            "id": "pay_1",
            "tenant": {"merchantId": "merchant_1", "mode": "test"},
            "customerId": "cust_1",
            "invoiceId": "inv_1",
            "paymentMethodId": "pm_1",
            "provider": "stripe",
            "kind": "refund",
            "amountCents": -900,
            "currency": "EUR",
            "refundedPaymentId": "pay_7",
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(
        serde_json::to_value(failed()).unwrap(),
        json!({"PaymentFailed": {
            "errorMessage": "Your card was declined.",
            "errorCode": "card_declined",
            "at": "2026-01-02T03:04:08Z",
        }})
    );
}

fn purchase(quantity: i64, unit_amount_cents: i64) -> crate::top_up::TopUpPurchase {
    crate::top_up::TopUpPurchase {
        top_up_id: crate::id::TopUpId::parse("tu_1").unwrap(),
        feature_slug: crate::credit::FeatureSlug::parse("api_calls").unwrap(),
        name: "API calls".to_owned(),
        quantity,
        unit_amount_cents,
        credits: quantity * 1000,
        purchased_at: now(),
        expires_at: None,
        invoice_id: InvoiceId::parse("inv_9").unwrap(),
        grant_id: crate::id::CreditGrantId::parse("cg_9").unwrap(),
    }
}

fn initiate_top_up(kind: PaymentKind, amount_cents: i64) -> PaymentCommand {
    let PaymentCommand::Initiate {
        id,
        tenant,
        customer_id,
        payment_method_id,
        provider,
        currency,
        ..
    } = initiate(PaymentKind::Charge, 1, None)
    else {
        unreachable!("initiate() makes an Initiate")
    };
    PaymentCommand::Initiate {
        id,
        tenant,
        customer_id,
        invoice_id: None,
        payment_method_id,
        provider,
        kind,
        amount_cents,
        currency,
        refunded_payment_id: kind.eq(&PaymentKind::Refund).then(|| pay(2)),
        top_up: Some(purchase(3, 500)),
    }
}

#[test]
fn a_top_up_charge_records_what_it_buys() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate_top_up(PaymentKind::Charge, 1500))
        .then_expect_events(vec![PaymentEvent::PaymentInitiated {
            id: pay(1),
            tenant: tenant(),
            customer_id: CustomerId::parse("cust_1").unwrap(),
            invoice_id: None,
            payment_method_id: Some(PaymentMethodId::parse("pm_1").unwrap()),
            provider: Provider::Stripe,
            kind: PaymentKind::Charge,
            amount_cents: 1500,
            currency: Currency::parse("EUR").unwrap(),
            refunded_payment_id: None,
            top_up: Some(purchase(3, 500)),
            at: now(),
        }]);
}

#[test]
fn a_top_up_charge_of_another_amount_than_the_purchase_or_a_refund_is_refused() {
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate_top_up(PaymentKind::Charge, 1499))
        .then_expect_error(PaymentError::TopUpAmountMismatch);
    PaymentTester::with(services())
        .given_no_previous_events()
        .when(initiate_top_up(PaymentKind::Refund, 1500))
        .then_expect_error(PaymentError::TopUpAmountMismatch);
}

#[test]
fn a_payment_stored_before_top_ups_reads_as_buying_nothing() {
    let mut stored = serde_json::to_value(charge_initiated()).unwrap();
    let payload = stored
        .get_mut("PaymentInitiated")
        .and_then(|p| p.as_object_mut())
        .unwrap();
    assert!(!payload.contains_key("topUp"), "{payload:?}");
    payload.remove("topUp");
    let event: PaymentEvent = serde_json::from_value(stored).unwrap();
    assert_eq!(state_after(vec![event]).top_up, None);
}
