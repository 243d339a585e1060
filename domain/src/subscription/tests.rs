use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use crate::clock::FixedClock;
use crate::currency::Currency;
use crate::id::{CustomerId, PaymentMethodId, PlanId, PriceId, SubscriptionId};
use crate::subscription::{
    PlanSnapshot, Subscription, SubscriptionCommand, SubscriptionError, SubscriptionEvent,
    SubscriptionServices, SubscriptionStatus,
};
use crate::tenant::{Mode, Tenant};

type SubscriptionTester = TestFramework<Subscription>;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn services() -> SubscriptionServices {
    SubscriptionServices {
        clock: Arc::new(FixedClock(now())),
    }
}

fn tenant() -> Tenant {
    Tenant::new("merchant_1", Mode::Test)
}

fn other_tenant() -> Tenant {
    Tenant::new("merchant_2", Mode::Test)
}

fn id() -> SubscriptionId {
    SubscriptionId::parse("sub_1").unwrap()
}

fn pm(n: u32) -> PaymentMethodId {
    PaymentMethodId::parse(&format!("pm_{n}")).unwrap()
}

fn plan() -> PlanSnapshot {
    PlanSnapshot {
        plan_id: PlanId::parse("plan_1").unwrap(),
        price_id: PriceId::parse("price_1").unwrap(),
        name: "Pro".into(),
        description: Some("Pro plan".into()),
        currency: Currency::parse("USD").unwrap(),
        pricing_data: json!({"components": []}),
    }
}

fn grace_end() -> DateTime<Utc> {
    now() + Duration::days(7)
}

fn started(payment_method_id: Option<PaymentMethodId>) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionStarted {
        id: id(),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        plan: plan(),
        payment_method_id,
        at: now(),
    }
}

fn past_due() -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionPastDue {
        grace_period_ends_at: grace_end(),
        at: now(),
    }
}

fn canceled() -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionCanceled { at: now() }
}

fn change_payment_method(n: u32) -> SubscriptionCommand {
    SubscriptionCommand::ChangeSubscriptionPaymentMethod {
        tenant: tenant(),
        payment_method_id: pm(n),
    }
}

fn mark_past_due(grace_period_ends_at: DateTime<Utc>) -> SubscriptionCommand {
    SubscriptionCommand::MarkPastDue {
        tenant: tenant(),
        grace_period_ends_at,
    }
}

fn state_after(events: Vec<SubscriptionEvent>) -> Subscription {
    let mut subscription = Subscription::default();
    events.into_iter().for_each(|e| subscription.apply(e));
    subscription
}

#[test]
fn start_subscription_records_the_plan_snapshot_and_payment_method() {
    SubscriptionTester::with(services())
        .given_no_previous_events()
        .when(SubscriptionCommand::StartSubscription {
            id: id(),
            tenant: tenant(),
            customer_id: CustomerId::parse("cust_1").unwrap(),
            plan: plan(),
            payment_method_id: Some(pm(1)),
        })
        .then_expect_events(vec![started(Some(pm(1)))]);
}

#[test]
fn start_subscription_is_refused_when_the_id_already_exists() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(SubscriptionCommand::StartSubscription {
            id: id(),
            tenant: tenant(),
            customer_id: CustomerId::parse("cust_2").unwrap(),
            plan: plan(),
            payment_method_id: None,
        })
        .then_expect_error(SubscriptionError::AlreadyExists);
}

#[test]
fn change_payment_method_records_the_old_and_the_new_one() {
    SubscriptionTester::with(services())
        .given(vec![started(Some(pm(1)))])
        .when(change_payment_method(2))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionPaymentMethodChanged {
            from: Some(pm(1)),
            to: pm(2),
            at: now(),
        }]);
}

#[test]
fn change_payment_method_gives_one_to_a_subscription_that_had_none() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(change_payment_method(2))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionPaymentMethodChanged {
            from: None,
            to: pm(2),
            at: now(),
        }]);
}

#[test]
fn change_payment_method_to_the_same_one_records_nothing() {
    SubscriptionTester::with(services())
        .given(vec![started(Some(pm(1)))])
        .when(change_payment_method(1))
        .then_expect_events(vec![]);
}

#[test]
fn change_payment_method_is_allowed_while_past_due() {
    SubscriptionTester::with(services())
        .given(vec![started(Some(pm(1))), past_due()])
        .when(change_payment_method(2))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionPaymentMethodChanged {
            from: Some(pm(1)),
            to: pm(2),
            at: now(),
        }]);
}

#[test]
fn change_payment_method_is_refused_when_subscription_is_canceled() {
    SubscriptionTester::with(services())
        .given(vec![started(Some(pm(1))), canceled()])
        .when(change_payment_method(2))
        .then_expect_error(SubscriptionError::Canceled);
}

#[test]
fn change_payment_method_is_refused_for_another_tenant() {
    SubscriptionTester::with(services())
        .given(vec![started(Some(pm(1)))])
        .when(SubscriptionCommand::ChangeSubscriptionPaymentMethod {
            tenant: other_tenant(),
            payment_method_id: pm(2),
        })
        .then_expect_error(SubscriptionError::NotFound);
}

#[test]
fn change_payment_method_is_refused_when_subscription_was_never_started() {
    SubscriptionTester::with(services())
        .given_no_previous_events()
        .when(change_payment_method(2))
        .then_expect_error(SubscriptionError::NotFound);
}

#[test]
fn mark_past_due_records_the_end_of_the_grace_period() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(mark_past_due(grace_end()))
        .then_expect_events(vec![past_due()]);
}

#[test]
fn mark_past_due_is_refused_when_the_grace_period_is_not_in_the_future() {
    for end in [now(), now() - Duration::seconds(1)] {
        SubscriptionTester::with(services())
            .given(vec![started(None)])
            .when(mark_past_due(end))
            .then_expect_error(SubscriptionError::GracePeriodInPast);
    }
}

#[test]
fn mark_past_due_again_with_the_same_grace_period_records_nothing() {
    SubscriptionTester::with(services())
        .given(vec![started(None), past_due()])
        .when(mark_past_due(grace_end()))
        .then_expect_events(vec![]);
}

#[test]
fn mark_past_due_again_with_a_new_grace_period_moves_it() {
    let later = grace_end() + Duration::days(3);
    SubscriptionTester::with(services())
        .given(vec![started(None), past_due()])
        .when(mark_past_due(later))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionPastDue {
            grace_period_ends_at: later,
            at: now(),
        }]);
}

#[test]
fn mark_past_due_is_refused_when_subscription_is_canceled() {
    SubscriptionTester::with(services())
        .given(vec![started(None), canceled()])
        .when(mark_past_due(grace_end()))
        .then_expect_error(SubscriptionError::Canceled);
}

#[test]
fn mark_paid_reactivates_a_past_due_subscription() {
    SubscriptionTester::with(services())
        .given(vec![started(None), past_due()])
        .when(SubscriptionCommand::MarkPaid { tenant: tenant() })
        .then_expect_events(vec![SubscriptionEvent::SubscriptionReactivated {
            at: now(),
        }]);
}

#[test]
fn mark_paid_on_an_active_subscription_records_nothing() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(SubscriptionCommand::MarkPaid { tenant: tenant() })
        .then_expect_events(vec![]);
}

#[test]
fn mark_paid_is_refused_when_subscription_is_canceled() {
    SubscriptionTester::with(services())
        .given(vec![started(None), past_due(), canceled()])
        .when(SubscriptionCommand::MarkPaid { tenant: tenant() })
        .then_expect_error(SubscriptionError::Canceled);
}

#[test]
fn cancel_subscription_records_canceled() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(SubscriptionCommand::CancelSubscription { tenant: tenant() })
        .then_expect_events(vec![canceled()]);
}

#[test]
fn cancel_subscription_is_allowed_while_past_due() {
    SubscriptionTester::with(services())
        .given(vec![started(None), past_due()])
        .when(SubscriptionCommand::CancelSubscription { tenant: tenant() })
        .then_expect_events(vec![canceled()]);
}

#[test]
fn cancel_subscription_is_refused_when_already_canceled() {
    SubscriptionTester::with(services())
        .given(vec![started(None), canceled()])
        .when(SubscriptionCommand::CancelSubscription { tenant: tenant() })
        .then_expect_error(SubscriptionError::AlreadyCanceled);
}

#[test]
fn cancel_subscription_is_refused_for_another_tenant() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: other_tenant(),
        })
        .then_expect_error(SubscriptionError::NotFound);
}

#[test]
fn a_past_due_subscription_is_still_active_and_a_canceled_one_is_not() {
    assert!(!state_after(vec![]).is_active());
    assert!(state_after(vec![started(None)]).is_active());

    let overdue = state_after(vec![started(None), past_due()]);
    assert!(overdue.is_active());
    assert_eq!(overdue.status, Some(SubscriptionStatus::PastDue));
    assert_eq!(overdue.grace_period_ends_at, Some(grace_end()));

    let ended = state_after(vec![started(None), past_due(), canceled()]);
    assert!(!ended.is_active());
    assert_eq!(ended.grace_period_ends_at, None);
    assert_eq!(ended.canceled_at, Some(now()));
}

#[test]
fn statuses_are_stored_in_snake_case() {
    for status in [
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
    ] {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
    assert_eq!(SubscriptionStatus::PastDue.as_str(), "past_due");
}

#[test]
fn stored_subscription_started_is_camel_case_and_reads_back_equal() {
    let event = started(Some(pm(1)));
    let stored = serde_json::to_value(&event).unwrap();
    assert_eq!(
        stored,
        json!({"SubscriptionStarted": {
            "id": "sub_1",
            "tenant": {"merchantId": "merchant_1", "mode": "test"},
            "customerId": "cust_1",
            "plan": {
                "planId": "plan_1",
                "priceId": "price_1",
                "name": "Pro",
                "description": "Pro plan",
                "currency": "USD",
                "pricingData": {"components": []},
            },
            "paymentMethodId": "pm_1",
            "at": "2026-01-02T03:04:05Z",
        }})
    );
    assert_eq!(
        serde_json::from_value::<SubscriptionEvent>(stored).unwrap(),
        event
    );

    let past_due = serde_json::to_value(past_due()).unwrap();
    assert_eq!(
        past_due,
        json!({"SubscriptionPastDue": {
            "gracePeriodEndsAt": "2026-01-09T03:04:05Z",
            "at": "2026-01-02T03:04:05Z",
        }})
    );
}
