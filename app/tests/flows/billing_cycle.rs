//! The billing cycle on the test clock: a start invoices and charges its first period, each
//! period's end renews and bills the next, a declined card makes the subscription past due and
//! is retried 1, 3 and 5 days later, the grace's end cancels it and writes the invoice off, a
//! card added meanwhile recovers it; each period is billed once, also with two schedulers
//! racing or a charge cut by a crash.

use app::due_work::DueWork;
use app::flows::DeathPlan;
use app::plans::NewPlan;
use app::App;
use chrono::{DateTime, Duration, Utc};
use domain::id::{CustomerId, PaymentMethodId, PlanId, SubscriptionId};
use serde_json::json;

use crate::support::{id_of, invoices, payments, race_schedulers, two_instances_after, Fixture};

async fn plan(f: &Fixture, trial_days: Option<i64>) -> PlanId {
    f.app
        .create_plan(
            &f.metadata,
            NewPlan {
                name: Some("Pro".into()),
                currency: Some("USD".into()),
                pricing_data: Some(json!({"components": [
                    {"type": "flat", "name": "Pro", "amountCents": 2900},
                    {"type": "per_seat", "name": "Seats", "unitAmountCents": 1000},
                ]})),
                trial_days,
                ..NewPlan::default()
            },
        )
        .await
        .expect("plan")
        .id
        .expect("plan id")
}

/// A customer with a card ending in `last_four`, on the plan.
async fn subscribed(
    f: &Fixture,
    last_four: &str,
    trial_days: Option<i64>,
) -> (CustomerId, PaymentMethodId, SubscriptionId) {
    let customer = f.customer(&format!("{last_four}@example.com")).await;
    let card = f.card(&customer, last_four).await;
    let plan = plan(f, trial_days).await;
    let subscription = f.start(&customer, &plan, Some(&card)).await.expect("start");
    (customer, card, id_of(&subscription))
}

async fn current_period_end(f: &Fixture, subscription: &SubscriptionId) -> DateTime<Utc> {
    f.subscription(subscription)
        .await
        .current_period_end
        .expect("a current period")
}

async fn now(f: &Fixture) -> DateTime<Utc> {
    f.app.test_clock(f.principal()).unwrap()
}

async fn advance(f: &Fixture, by: Duration) {
    let to = now(f).await + by;
    f.app.advance_test_clock(f.principal(), to).await.unwrap();
}

#[tokio::test]
async fn a_start_bills_its_first_period_and_each_period_end_the_next() {
    let f = Fixture::new().await;
    let (_, _, subscription) = subscribed(&f, "4242", None).await;
    let first = invoices(&f, &subscription).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].number.as_deref(), Some("INV-0001"));
    assert_eq!(first[0].status, "paid");
    // $29 flat and one seat at $10.
    assert_eq!(first[0].total_amount_cents, 3900);
    let paid = payments(&f, &first[0]).await;
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (paid[0].status.as_str(), paid[0].amount_cents),
        ("succeeded", 3900)
    );

    let started = f.subscription(&subscription).await;
    advance(&f, Duration::days(62)).await;
    let renewed = f.subscription(&subscription).await;
    let all = invoices(&f, &subscription).await;
    assert_eq!(
        all.iter()
            .map(|i| i.number.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["INV-0001", "INV-0002", "INV-0003"]
    );
    assert!(all.iter().all(|i| i.status == "paid"));
    assert_eq!(all[1].period_start, started.current_period_end);
    assert_eq!(renewed.current_period_start, all[2].period_start);
    assert_eq!(
        renewed.status,
        Some(domain::subscription::SubscriptionStatus::Active)
    );
}

#[tokio::test]
async fn a_declined_card_is_retried_on_days_one_three_and_five_then_the_grace_end_cancels() {
    let f = Fixture::new().await;
    let (_, _, subscription) = subscribed(&f, "0341", None).await;
    let past_due = f.subscription(&subscription).await;
    assert_eq!(
        past_due.status,
        Some(domain::subscription::SubscriptionStatus::PastDue)
    );
    let started = now(&f).await;
    let grace = past_due.grace_period_ends_at.expect("a grace period");
    assert!((grace - started - Duration::days(7)).num_seconds().abs() < 5);

    advance(&f, Duration::days(6)).await;
    let invoice = invoices(&f, &subscription).await.remove(0);
    let tried = payments(&f, &invoice).await;
    assert_eq!(tried.len(), 4, "the first charge and three retries");
    assert!(tried.iter().all(|p| p.status == "failed"));
    assert_eq!(
        tried[0].error_message.as_deref(),
        Some("Your card was declined.")
    );
    assert_eq!(tried[0].error_code.as_deref(), Some("card_declined"));
    let days: Vec<i64> = tried
        .iter()
        .map(|p| (p.settled_at.unwrap() - tried[0].settled_at.unwrap()).num_hours() / 24)
        .collect();
    assert_eq!(days, vec![0, 1, 3, 5]);
    assert_eq!(invoice.status, "issued");

    advance(&f, Duration::days(2)).await;
    let ended = f.subscription(&subscription).await;
    assert_eq!(
        ended.status,
        Some(domain::subscription::SubscriptionStatus::Canceled)
    );
    let invoice = invoices(&f, &subscription).await.remove(0);
    assert_eq!(invoice.status, "uncollectible");
    assert_eq!(
        payments(&f, &invoice).await.len(),
        4,
        "no retry past the grace"
    );
    advance(&f, Duration::days(40)).await;
    assert_eq!(
        invoices(&f, &subscription).await.len(),
        1,
        "a canceled one is not renewed"
    );
}

#[tokio::test]
async fn a_card_added_during_the_grace_recovers_the_subscription_at_the_next_retry() {
    let f = Fixture::new().await;
    let (customer, _, subscription) = subscribed(&f, "9995", None).await;
    let invoice = invoices(&f, &subscription).await.remove(0);
    assert_eq!(
        payments(&f, &invoice).await[0].error_code.as_deref(),
        Some("insufficient_funds")
    );
    // The new card becomes the default, and the subscription moves to it.
    f.card(&customer, "4242").await;
    advance(&f, Duration::days(1) + Duration::minutes(1)).await;
    let recovered = f.subscription(&subscription).await;
    assert_eq!(
        recovered.status,
        Some(domain::subscription::SubscriptionStatus::Active)
    );
    assert_eq!(recovered.grace_period_ends_at, None);
    let invoice = invoices(&f, &subscription).await.remove(0);
    assert_eq!(invoice.status, "paid");
    let tried = payments(&f, &invoice).await;
    assert_eq!(
        tried.iter().map(|p| p.status.as_str()).collect::<Vec<_>>(),
        vec!["failed", "succeeded"]
    );
}

#[tokio::test]
async fn cancel_at_period_end_ends_it_then_without_another_invoice() {
    let f = Fixture::new().await;
    let (_, card, subscription) = subscribed(&f, "4242", None).await;
    f.app
        .cancel_subscription_at_period_end(&f.metadata, subscription.as_str())
        .await
        .unwrap();
    let scheduled = f.subscription(&subscription).await;
    assert!(scheduled.cancel_at_period_end);
    assert_eq!(
        scheduled.status,
        Some(domain::subscription::SubscriptionStatus::Active)
    );
    advance(&f, Duration::days(32)).await;
    let ended = f.subscription(&subscription).await;
    assert_eq!(
        ended.status,
        Some(domain::subscription::SubscriptionStatus::Canceled)
    );
    // At its period's end, by the test clock (which runs on while the work is done).
    let late = ended.canceled_at.unwrap() - scheduled.current_period_end.unwrap();
    assert!(
        late >= Duration::zero() && late < Duration::seconds(2),
        "{late}"
    );
    assert_eq!(invoices(&f, &subscription).await.len(), 1);
    assert_eq!(f.linked(&card).await, None, "its card is free");
}

#[tokio::test]
async fn a_trial_bills_nothing_until_it_ends() {
    let f = Fixture::new().await;
    let (_, _, subscription) = subscribed(&f, "4242", Some(14)).await;
    assert!(invoices(&f, &subscription).await.is_empty());
    advance(&f, Duration::days(13)).await;
    assert!(invoices(&f, &subscription).await.is_empty());
    advance(&f, Duration::days(2)).await;
    let first = invoices(&f, &subscription).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].status, "paid");
    let trial_end = f.subscription(&subscription).await.trial_ends_at;
    assert_eq!(first[0].period_start, trial_end);
}

#[tokio::test]
async fn two_schedulers_racing_bill_each_period_once() {
    let f = Fixture::new().await;
    let mut subscriptions = Vec::new();
    for n in 0..6 {
        subscriptions.push(subscribed(&f, &format!("42{n:02}"), None).await.2);
    }
    // Move the clock without running anything, then let two instances' schedulers race.
    let to = now(&f).await + Duration::days(31);
    let (one, two) = two_instances_after(&f, Duration::days(31)).await;
    assert!(one.test_clock(f.principal()).unwrap() >= to - Duration::seconds(5));
    // After the race and the tick that resumes what its loser let go, each period must be
    // billed once and charged once: nothing lost, nothing twice.
    race_schedulers(&one, &two).await;
    for subscription in &subscriptions {
        let billed = invoices(&f, subscription).await;
        assert_eq!(billed.len(), 2, "{subscription}: two periods, two invoices");
        for invoice in &billed {
            assert_eq!(payments(&f, invoice).await.len(), 1, "charged once");
        }
    }
    let series = f.app.invoice_numbering(f.principal()).await.unwrap();
    assert_eq!((series[0].last, series[0].count), (12, 12), "gapless");
}

/// Another instance that advances the clock past `period_end` and dies in the renewal's
/// flow after its `after`th commit; it stays alive as an instance until told to stop.
async fn renewal_cut_after(f: &Fixture, period_end: DateTime<Utc>, after: usize) -> App {
    let dying = App::new(f.pool.clone()).with_death(DeathPlan {
        kind: "subscription.periodEnd".into(),
        after_commits: after,
        abort: false,
    });
    let principal = f.principal().clone();
    let died = tokio::spawn({
        let dying = dying.clone();
        async move {
            dying
                .advance_test_clock(&principal, period_end + Duration::hours(1))
                .await
        }
    })
    .await;
    assert!(died.is_err_and(|e| e.is_panic()), "cut after step {after}");
    dying
}

#[tokio::test]
async fn a_renewal_cut_after_each_step_is_billed_once_on_resume() {
    for after in 1..=5 {
        let f = Fixture::new().await;
        let (_, _, subscription) = subscribed(&f, "4242", None).await;
        let period_end = current_period_end(&f, &subscription).await;
        let dying = renewal_cut_after(&f, period_end, after).await;
        dying.instance.stop_living().await;
        f.app.load_test_clocks().await.unwrap();
        assert_eq!(f.app.resume_abandoned_flows().await.unwrap(), 1);
        let billed = invoices(&f, &subscription).await;
        assert_eq!(billed.len(), 2, "cut after step {after}");
        assert_eq!(
            billed[1].status,
            "paid",
            "cut after step {after}: {:?}",
            payments(&f, &billed[1]).await
        );
        assert_eq!(payments(&f, &billed[1]).await.len(), 1, "charged once");
    }
}

/// A period end read due before another run renewed the subscription: while that run is
/// midway (its flow unfinished, its instance alive), the piece is run again and finishes the
/// billing, so an advance that read it answers with the period billed; once that run has
/// finished, the piece is done and nothing runs again (no flow is even recorded).
#[tokio::test]
async fn a_period_end_read_before_another_run_renewed_it_is_finished_or_skipped() {
    let f = Fixture::new().await;
    let (_, _, subscription) = subscribed(&f, "4242", None).await;
    let period_end = current_period_end(&f, &subscription).await;
    let piece = || DueWork::PeriodEnd {
        subscription_id: subscription.clone(),
        period_end,
    };
    // Cut after its first step, the renewal: the period is no longer due, nothing billed.
    let midway = renewal_cut_after(&f, period_end, 1).await;
    assert_eq!(
        invoices(&f, &subscription).await.len(),
        1,
        "renewed, not billed"
    );

    // The other instance lives on; this one runs the piece it read due before.
    f.app.load_test_clocks().await.unwrap();
    f.app.run_due(f.tenant(), piece()).await.unwrap();
    let billed = invoices(&f, &subscription).await;
    assert_eq!(billed.len(), 2, "the period is billed when the piece ends");
    assert_eq!(billed[1].status, "paid");
    assert_eq!(payments(&f, &billed[1]).await.len(), 1, "charged once");

    // Once no run of it is unfinished, the stale piece is skipped outright.
    midway.instance.stop_living().await;
    assert_eq!(f.app.resume_abandoned_flows().await.unwrap(), 1);
    let flows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM flow_runs")
            .fetch_one(&f.pool)
            .await
            .unwrap()
    };
    let before = flows().await;
    f.app.run_due(f.tenant(), piece()).await.unwrap();
    assert_eq!(
        flows().await,
        before,
        "no flow recorded for a piece already done"
    );
    assert_eq!(invoices(&f, &subscription).await.len(), 2);
}

/// Work due just before `to` takes time: the clock passes `to` meanwhile, and the advance
/// still answers (it never goes back, and it is not asked to).
#[tokio::test]
async fn an_advance_whose_last_due_work_ends_past_its_target_answers() {
    let f = Fixture::new().await;
    let (_, _, subscription) = subscribed(&f, "4242", None).await;
    let period_end = current_period_end(&f, &subscription).await;
    let to = period_end + Duration::microseconds(1);
    let now = f.app.advance_test_clock(f.principal(), to).await.unwrap();
    assert!(now >= to);
    assert_eq!(invoices(&f, &subscription).await.len(), 2);
}

/// A merchant's own grace period: three days, so the retry of day 1 is made, and the grace
/// ends (canceling) before the retries of days 3 and 5.
#[tokio::test]
async fn the_merchants_grace_period_sets_when_dunning_ends() {
    let f = Fixture::new().await;
    app::merchants::set_grace_period_days(&f.pool, &f.merchant_id, 3)
        .await
        .unwrap();
    assert!(
        app::merchants::set_grace_period_days(&f.pool, &f.merchant_id, 61)
            .await
            .is_err()
    );
    let (_, _, subscription) = subscribed(&f, "0341", None).await;
    let started = now(&f).await;
    let grace = f
        .subscription(&subscription)
        .await
        .grace_period_ends_at
        .unwrap();
    assert!((grace - started - Duration::days(3)).num_seconds().abs() < 5);
    advance(&f, Duration::days(10)).await;
    let ended = f.subscription(&subscription).await;
    assert_eq!(
        ended.status,
        Some(domain::subscription::SubscriptionStatus::Canceled)
    );
    let invoice = invoices(&f, &subscription).await.remove(0);
    assert_eq!(invoice.status, "uncollectible");
    assert_eq!(
        payments(&f, &invoice).await.len(),
        2,
        "the first charge and the retry of day 1; none past the grace"
    );
}

#[tokio::test]
async fn seats_are_billed_times_the_subscriptions_quantity() {
    let f = Fixture::new().await;
    let customer = f.customer("seats@example.com").await;
    let card = f.card(&customer, "4242").await;
    let plan = plan(&f, None).await;
    let started = f
        .app
        .start_subscription(
            &f.metadata,
            app::subscriptions::NewSubscription {
                customer_id: Some(customer.to_string()),
                plan_id: Some(plan.to_string()),
                payment_method_id: Some(card.to_string()),
                quantity: Some(3),
            },
        )
        .await
        .expect("start with three seats");
    let first = invoices(&f, &id_of(&started)).await;
    assert_eq!(first.len(), 1);
    // $29 flat and three seats at $10.
    assert_eq!(first[0].total_amount_cents, 2900 + 3 * 1000);
    let seats = first[0]
        .lines
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["unitAmountCents"] == 1000)
        .expect("a seats line")
        .clone();
    assert_eq!(
        (seats["quantity"].clone(), seats["amountCents"].clone()),
        (json!(3), json!(3000))
    );
    assert_eq!(payments(&f, &first[0]).await[0].amount_cents, 5900);
}

/// The backend that holds the scheduler's lock in this database, if one does.
async fn scheduler_owner(f: &Fixture) -> Option<i32> {
    // The lock key 0x62736368 ("bsch") fits in the low 32 bits: objid, classid 0.
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND classid = 0 AND objid = 1651729256 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_optional(&f.pool)
    .await
    .expect("read pg_locks")
}

#[tokio::test]
async fn one_instance_owns_the_scheduler_and_another_takes_over_when_it_is_gone() {
    let f = Fixture::new().await;
    let (first, second) = (App::new(f.pool.clone()), App::new(f.pool.clone()));
    first.spawn_scheduler();
    second.spawn_scheduler();
    crate::support::eventually("an owner", || async { scheduler_owner(&f).await.is_some() }).await;
    let owner = scheduler_owner(&f).await.unwrap();
    // For a while, still one owner, the same.
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let holders: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND classid = 0 AND objid = 1651729256 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(&f.pool)
        .await
        .unwrap();
        assert_eq!(holders, 1);
    }
    // The owner's connection dies, as with its process: the other instance takes over.
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(owner)
        .execute(&f.pool)
        .await
        .unwrap();
    crate::support::eventually("another owner", || async {
        scheduler_owner(&f).await.is_some_and(|pid| pid != owner)
    })
    .await;
}

#[tokio::test]
async fn the_scheduler_status_shows_the_queue_its_lag_and_the_next_piece() {
    let f = Fixture::new().await;
    let (_, _, subscription) = subscribed(&f, "4242", None).await;
    let period_end = current_period_end(&f, &subscription).await;

    let status = f.app.scheduler_status().await.unwrap();
    assert!(!status.owned, "no scheduler runs in this test");
    let queue = &status.tenants[0];
    assert_eq!(queue.tenant, f.tenant().key());
    assert_eq!((queue.due_now, queue.lag), (0, None));
    assert_eq!(queue.next_due, Some(period_end));

    // The clock passes the period's end by ten days with nobody running the work.
    // The offset is from the base clock, which the test clock runs ahead of.
    let offset = (period_end + Duration::days(10)) - f.app.clock.now();
    projections::tables::test_clocks::advance(
        &f.pool,
        &f.tenant().key(),
        offset.num_microseconds().unwrap(),
    )
    .await
    .unwrap();
    let status = f.app.scheduler_status().await.unwrap();
    let queue = &status.tenants[0];
    assert_eq!(queue.due_now, 1);
    let lag = queue.lag.unwrap();
    assert!(
        lag >= Duration::days(10) && lag < Duration::days(10) + Duration::minutes(1),
        "{lag}"
    );

    // The scheduler runs it: the queue is empty, the next period's end is next.
    f.app.run_scheduler_once().await;
    let status = f.app.scheduler_status().await.unwrap();
    let queue = &status.tenants[0];
    assert_eq!((queue.due_now, queue.lag), (0, None));
    assert_eq!(
        queue.next_due,
        f.subscription(&subscription).await.current_period_end
    );
    assert_eq!(queue.pending_charges, 0);
}
