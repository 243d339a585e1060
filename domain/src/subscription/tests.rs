use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use serde_json::json;

use crate::clock::FixedClock;
use crate::currency::Currency;
use crate::id::{CustomerId, PaymentMethodId, PlanId, PriceId, SubscriptionId};
use crate::plan::Interval;
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
        interval: Interval::Month,
        trial_days: 0,
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
        quantity: 1,
        trial_ends_at: None,
        current_period_start: Some(now()),
        current_period_end: Some(Utc.with_ymd_and_hms(2026, 2, 2, 3, 4, 5).unwrap()),
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
            quantity: None,
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
            quantity: None,
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
        .when(SubscriptionCommand::CancelSubscription {
            tenant: tenant(),
            at_period_end: false,
        })
        .then_expect_events(vec![canceled()]);
}

#[test]
fn cancel_subscription_is_allowed_while_past_due() {
    SubscriptionTester::with(services())
        .given(vec![started(None), past_due()])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: tenant(),
            at_period_end: false,
        })
        .then_expect_events(vec![canceled()]);
}

#[test]
fn cancel_subscription_is_refused_when_already_canceled() {
    SubscriptionTester::with(services())
        .given(vec![started(None), canceled()])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: tenant(),
            at_period_end: false,
        })
        .then_expect_error(SubscriptionError::AlreadyCanceled);
}

#[test]
fn cancel_subscription_is_refused_for_another_tenant() {
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: other_tenant(),
            at_period_end: false,
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
                "interval": "month",
                "trialDays": 0,
            },
            "paymentMethodId": "pm_1",
            "quantity": 1,
            "trialEndsAt": null,
            "currentPeriodStart": "2026-01-02T03:04:05Z",
            "currentPeriodEnd": "2026-02-02T03:04:05Z",
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

fn at(day_offset: i64) -> DateTime<Utc> {
    now() + Duration::days(day_offset)
}

fn services_at(instant: DateTime<Utc>) -> SubscriptionServices {
    SubscriptionServices {
        clock: Arc::new(FixedClock(instant)),
    }
}

fn start_command(plan: PlanSnapshot, quantity: Option<i64>) -> SubscriptionCommand {
    SubscriptionCommand::StartSubscription {
        id: id(),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        plan,
        payment_method_id: None,
        quantity,
    }
}

fn renewed(start: DateTime<Utc>, end: DateTime<Utc>, when: DateTime<Utc>) -> SubscriptionEvent {
    SubscriptionEvent::SubscriptionRenewed {
        period_start: start,
        period_end: end,
        at: when,
    }
}

fn feb() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 2, 3, 4, 5).unwrap()
}

fn mar() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 3, 4, 5).unwrap()
}

#[test]
fn a_start_records_its_seats_and_its_first_period() {
    let mut expected = started(None);
    if let SubscriptionEvent::SubscriptionStarted { quantity, .. } = &mut expected {
        *quantity = 5;
    }
    SubscriptionTester::with(services())
        .given_no_previous_events()
        .when(start_command(plan(), Some(5)))
        .then_expect_events(vec![expected]);
}

#[test]
fn a_start_is_refused_with_no_seats_or_too_many() {
    for quantity in [0, -1, 10_001] {
        SubscriptionTester::with(services())
            .given_no_previous_events()
            .when(start_command(plan(), Some(quantity)))
            .then_expect_error(SubscriptionError::InvalidQuantity);
    }
}

#[test]
fn a_trial_is_the_first_period_and_paid_periods_count_from_its_end() {
    let trial = PlanSnapshot {
        trial_days: 14,
        ..plan()
    };
    let trial_end = at(14);
    SubscriptionTester::with(services())
        .given_no_previous_events()
        .when(start_command(trial.clone(), None))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionStarted {
            id: id(),
            tenant: tenant(),
            customer_id: CustomerId::parse("cust_1").unwrap(),
            plan: trial.clone(),
            payment_method_id: None,
            quantity: 1,
            trial_ends_at: Some(trial_end),
            current_period_start: Some(now()),
            current_period_end: Some(trial_end),
            at: now(),
        }]);
    let in_trial = state_after(vec![SubscriptionEvent::SubscriptionStarted {
        id: id(),
        tenant: tenant(),
        customer_id: CustomerId::parse("cust_1").unwrap(),
        plan: trial,
        payment_method_id: None,
        quantity: 1,
        trial_ends_at: Some(trial_end),
        current_period_start: Some(now()),
        current_period_end: Some(trial_end),
        at: now(),
    }]);
    assert_eq!(in_trial.period_index, None);
    assert_eq!(
        in_trial.next_period(),
        Some((
            trial_end,
            Utc.with_ymd_and_hms(2026, 2, 16, 3, 4, 5).unwrap()
        ))
    );
}

#[test]
fn a_renewal_once_the_period_ended_begins_the_next_one() {
    SubscriptionTester::with(services_at(feb()))
        .given(vec![started(None)])
        .when(SubscriptionCommand::RenewSubscription {
            tenant: tenant(),
            period_start: feb(),
        })
        .then_expect_events(vec![renewed(feb(), mar(), feb())]);
    let state = state_after(vec![started(None), renewed(feb(), mar(), feb())]);
    assert_eq!(state.period_index, Some(1));
    assert_eq!(
        (state.current_period_start, state.current_period_end),
        (Some(feb()), Some(mar()))
    );
}

#[test]
fn a_renewal_asked_twice_renews_once() {
    SubscriptionTester::with(services_at(feb()))
        .given(vec![started(None), renewed(feb(), mar(), feb())])
        .when(SubscriptionCommand::RenewSubscription {
            tenant: tenant(),
            period_start: feb(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_renewal_before_the_period_ends_or_of_a_later_period_is_refused() {
    SubscriptionTester::with(services_at(at(10)))
        .given(vec![started(None)])
        .when(SubscriptionCommand::RenewSubscription {
            tenant: tenant(),
            period_start: feb(),
        })
        .then_expect_error(SubscriptionError::NotDue);
    SubscriptionTester::with(services_at(mar()))
        .given(vec![started(None)])
        .when(SubscriptionCommand::RenewSubscription {
            tenant: tenant(),
            period_start: mar(),
        })
        .then_expect_error(SubscriptionError::NotTheNextPeriod);
}

#[test]
fn a_canceled_subscription_is_not_renewed() {
    SubscriptionTester::with(services_at(feb()))
        .given(vec![started(None), canceled()])
        .when(SubscriptionCommand::RenewSubscription {
            tenant: tenant(),
            period_start: feb(),
        })
        .then_expect_error(SubscriptionError::Canceled);
}

#[test]
fn cancel_at_period_end_is_scheduled_once_and_stops_the_renewal() {
    let scheduled = SubscriptionEvent::SubscriptionCancelScheduled {
        cancel_at: feb(),
        at: now(),
    };
    SubscriptionTester::with(services())
        .given(vec![started(None)])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: tenant(),
            at_period_end: true,
        })
        .then_expect_events(vec![scheduled.clone()]);
    SubscriptionTester::with(services())
        .given(vec![started(None), scheduled.clone()])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: tenant(),
            at_period_end: true,
        })
        .then_expect_events(vec![]);
    SubscriptionTester::with(services_at(feb()))
        .given(vec![started(None), scheduled.clone()])
        .when(SubscriptionCommand::RenewSubscription {
            tenant: tenant(),
            period_start: feb(),
        })
        .then_expect_error(SubscriptionError::EndsAtPeriodEnd);
    // At the period's end the scheduler cancels it.
    SubscriptionTester::with(services_at(feb()))
        .given(vec![started(None), scheduled])
        .when(SubscriptionCommand::CancelSubscription {
            tenant: tenant(),
            at_period_end: true,
        })
        .then_expect_events(vec![SubscriptionEvent::SubscriptionCanceled { at: feb() }]);
}

#[test]
fn a_subscription_started_before_billing_reads_back_with_one_seat_and_a_period_from_its_start() {
    let stored = json!({"SubscriptionStarted": {
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
        "paymentMethodId": null,
        "at": "2026-01-02T03:04:05Z",
    }});
    let event: SubscriptionEvent = serde_json::from_value(stored).unwrap();
    let state = state_after(vec![event]);
    assert_eq!(state.quantity, 1);
    assert_eq!(state.current_period_start, Some(now()));
    assert_eq!(state.current_period_end, Some(feb()));
    assert_eq!(state.period_index, Some(0));
}
