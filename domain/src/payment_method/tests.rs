use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;

use crate::clock::FixedClock;
use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::payment_method::{
    Card, PaymentMethod, PaymentMethodCommand, PaymentMethodError, PaymentMethodEvent,
    PaymentMethodServices,
};
use crate::provider::Provider;
use crate::tenant::{Mode, Tenant};

type PaymentMethodTester = TestFramework<PaymentMethod>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn services() -> PaymentMethodServices {
    PaymentMethodServices {
        clock: Arc::new(FixedClock(now())),
    }
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn other_tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Live)
}

fn id() -> PaymentMethodId {
    PaymentMethodId::parse("pm_1").unwrap()
}

fn sub(n: u32) -> SubscriptionId {
    SubscriptionId::parse(&format!("sub_{n}")).unwrap()
}

fn card(exp_month: u32) -> Card {
    Card {
        brand: "visa".into(),
        last_four: "4242".into(),
        exp_month,
        exp_year: 2030,
    }
}

fn add(card: Option<Card>) -> PaymentMethodCommand {
    PaymentMethodCommand::AddPaymentMethod {
        id: id(),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        provider: Provider::Stripe,
        payment_type: "card".into(),
        card,
        provider_reference: Some("pm_1Abc".into()),
    }
}

fn added() -> PaymentMethodEvent {
    PaymentMethodEvent::PaymentMethodAdded {
        id: id(),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        provider: Provider::Stripe,
        payment_type: "card".into(),
        card: Some(card(12)),
        provider_reference: Some("pm_1Abc".into()),
        at: now(),
    }
}

fn linked(n: u32) -> PaymentMethodEvent {
    PaymentMethodEvent::PaymentMethodLinked {
        subscription_id: sub(n),
        at: now(),
    }
}

fn unlinked(n: u32) -> PaymentMethodEvent {
    PaymentMethodEvent::PaymentMethodUnlinked {
        subscription_id: sub(n),
        at: now(),
    }
}

fn removed() -> PaymentMethodEvent {
    PaymentMethodEvent::PaymentMethodRemoved { at: now() }
}

fn link(n: u32) -> PaymentMethodCommand {
    PaymentMethodCommand::LinkPaymentMethod {
        tenant: tenant(),
        subscription_id: sub(n),
    }
}

fn unlink(n: u32) -> PaymentMethodCommand {
    PaymentMethodCommand::UnlinkPaymentMethod {
        tenant: tenant(),
        subscription_id: sub(n),
    }
}

fn remove() -> PaymentMethodCommand {
    PaymentMethodCommand::RemovePaymentMethod { tenant: tenant() }
}

#[test]
fn add_payment_method_records_the_card_and_provider_reference() {
    PaymentMethodTester::with(services())
        .given_no_previous_events()
        .when(add(Some(card(12))))
        .then_expect_events(vec![added()]);
}

#[test]
fn add_payment_method_needs_no_card() {
    PaymentMethodTester::with(services())
        .given_no_previous_events()
        .when(PaymentMethodCommand::AddPaymentMethod {
            id: id(),
            tenant: tenant(),
            customer_id: CustomerId::parse("cust_1").unwrap(),
            provider: Provider::Dodo,
            payment_type: "mandate".into(),
            card: None,
            provider_reference: None,
        })
        .then_expect_events(vec![PaymentMethodEvent::PaymentMethodAdded {
            id: id(),
            tenant: tenant(),
            customer_id: CustomerId::parse("cust_1").unwrap(),
            provider: Provider::Dodo,
            payment_type: "mandate".into(),
            card: None,
            provider_reference: None,
            at: now(),
        }]);
}

#[test]
fn add_payment_method_is_refused_when_the_card_expiry_month_is_not_1_to_12() {
    for month in [0, 13] {
        PaymentMethodTester::with(services())
            .given_no_previous_events()
            .when(add(Some(card(month))))
            .then_expect_error(PaymentMethodError::InvalidCardExpiry);
    }
}

#[test]
fn add_payment_method_is_refused_when_the_id_already_exists() {
    PaymentMethodTester::with(services())
        .given(vec![added()])
        .when(add(Some(card(12))))
        .then_expect_error(PaymentMethodError::AlreadyExists);
}

#[test]
fn link_payment_method_records_the_subscription() {
    PaymentMethodTester::with(services())
        .given(vec![added()])
        .when(link(1))
        .then_expect_events(vec![linked(1)]);
}

#[test]
fn link_payment_method_to_the_subscription_it_is_linked_to_records_nothing() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(1)])
        .when(link(1))
        .then_expect_events(vec![]);
}

#[test]
fn link_payment_method_to_another_subscription_replaces_the_link() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(1)])
        .when(link(2))
        .then_expect_events(vec![linked(2)]);
}

#[test]
fn link_payment_method_is_refused_when_it_was_removed() {
    PaymentMethodTester::with(services())
        .given(vec![added(), removed()])
        .when(link(1))
        .then_expect_error(PaymentMethodError::Removed);
}

#[test]
fn link_payment_method_is_refused_for_another_tenant() {
    PaymentMethodTester::with(services())
        .given(vec![added()])
        .when(PaymentMethodCommand::LinkPaymentMethod {
            tenant: other_tenant(),
            subscription_id: sub(1),
        })
        .then_expect_error(PaymentMethodError::NotFound);
}

#[test]
fn link_payment_method_is_refused_when_it_was_never_added() {
    PaymentMethodTester::with(services())
        .given_no_previous_events()
        .when(link(1))
        .then_expect_error(PaymentMethodError::NotFound);
}

#[test]
fn unlink_payment_method_records_the_subscription_it_leaves() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(1)])
        .when(unlink(1))
        .then_expect_events(vec![unlinked(1)]);
}

#[test]
fn unlink_payment_method_from_a_subscription_it_is_not_linked_to_records_nothing() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(2)])
        .when(unlink(1))
        .then_expect_events(vec![]);
    PaymentMethodTester::with(services())
        .given(vec![added()])
        .when(unlink(1))
        .then_expect_events(vec![]);
}

#[test]
fn unlink_payment_method_that_was_removed_records_nothing() {
    PaymentMethodTester::with(services())
        .given(vec![added(), removed()])
        .when(unlink(1))
        .then_expect_events(vec![]);
}

#[test]
fn unlink_payment_method_is_refused_for_another_tenant() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(1)])
        .when(PaymentMethodCommand::UnlinkPaymentMethod {
            tenant: other_tenant(),
            subscription_id: sub(1),
        })
        .then_expect_error(PaymentMethodError::NotFound);
}

#[test]
fn remove_payment_method_records_removed() {
    PaymentMethodTester::with(services())
        .given(vec![added()])
        .when(remove())
        .then_expect_events(vec![removed()]);
}

#[test]
fn remove_payment_method_is_allowed_once_unlinked() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(1), unlinked(1)])
        .when(remove())
        .then_expect_events(vec![removed()]);
}

#[test]
fn remove_payment_method_is_refused_while_linked_to_a_subscription() {
    PaymentMethodTester::with(services())
        .given(vec![added(), linked(1)])
        .when(remove())
        .then_expect_error(PaymentMethodError::LinkedToActiveSubscription);
}

#[test]
fn remove_payment_method_is_refused_when_already_removed() {
    PaymentMethodTester::with(services())
        .given(vec![added(), removed()])
        .when(remove())
        .then_expect_error(PaymentMethodError::Removed);
}

#[test]
fn remove_payment_method_is_refused_for_another_tenant() {
    PaymentMethodTester::with(services())
        .given(vec![added()])
        .when(PaymentMethodCommand::RemovePaymentMethod {
            tenant: other_tenant(),
        })
        .then_expect_error(PaymentMethodError::NotFound);
}

#[test]
fn a_removed_payment_method_reads_as_not_found() {
    assert_eq!(
        PaymentMethodError::Removed.to_string(),
        PaymentMethodError::NotFound.to_string()
    );
}

#[test]
fn stored_payment_method_added_is_camel_case_and_reads_back_equal() {
    let event = added();
    let stored = serde_json::to_value(&event).unwrap();
    assert_eq!(
        stored,
        json!({"PaymentMethodAdded": {
            "id": "pm_1",
            "tenant": {"merchantId": "merchant_1", "mode": "test"},
            "customerId": "cust_1",
            "provider": "stripe",
            "paymentType": "card",
            "card": {"brand": "visa", "lastFour": "4242", "expMonth": 12, "expYear": 2030},
            "providerReference": "pm_1Abc",
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(
        serde_json::from_value::<PaymentMethodEvent>(stored).unwrap(),
        event
    );
    assert_eq!(
        serde_json::to_value(linked(1)).unwrap(),
        json!({"PaymentMethodLinked": {"subscriptionId": "sub_1", "at": "2026-01-02T03:04:05Z"}})
    );
}
