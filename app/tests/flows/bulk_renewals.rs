//! Renewals in bulk: a cohort whose periods end together is renewed a batch at a time, with
//! the same events and read models as a renewal one by one; cut after either of a batch's
//! writes, each period is still billed once and charged once, and the series stays gapless;
//! two instances racing over one cohort bill each period once.

use app::bulk_renewals::{BULK_AT_LEAST, BULK_RENEWAL};
use app::flows::DeathPlan;
use app::App;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use domain::id::{PlanId, SubscriptionId};

use crate::support::{
    id_of, invoices, payments, race_schedulers, rebuild, set_clock_offset, two_instances_after,
    Fixture,
};

/// More than enough period ends due at once to be renewed in bulk.
const COHORT: usize = BULK_AT_LEAST + 2;

/// `count` customers (`name`0, `name`1, …), each with a good card, subscribed to `plan` at
/// the same moment.
async fn cohort(f: &Fixture, plan: &PlanId, name: &str, count: usize) -> Vec<SubscriptionId> {
    let mut subscriptions = Vec::new();
    for n in 0..count {
        let customer = f.customer(&format!("{name}{n}@example.com")).await;
        let card = f.card(&customer, "4242").await;
        let started = f.start(&customer, plan, Some(&card)).await.expect("start");
        subscriptions.push(id_of(&started));
    }
    subscriptions
}

/// The latest end of the current periods of `subscriptions`.
async fn last_period_end(f: &Fixture, subscriptions: &[SubscriptionId]) -> DateTime<Utc> {
    let mut last = None;
    for subscription in subscriptions {
        let end = f.subscription(subscription).await.current_period_end;
        last = last.max(end);
    }
    last.expect("a current period")
}

/// Moves the test clock to `at` and runs `app`'s scheduler once: everything due by then, in
/// one go.
async fn scheduler_at(f: &Fixture, app: &App, at: DateTime<Utc>) {
    set_clock_offset(f, at - Utc::now()).await;
    app.load_test_clocks().await.unwrap();
    app.run_scheduler_once().await;
}

async fn advance(f: &Fixture, app: &App, by: Duration) {
    let to = app.test_clock(f.principal()).unwrap() + by;
    app.advance_test_clock(f.principal(), to).await.unwrap();
}

/// Each subscription's second period is invoiced once, paid by one succeeded charge.
async fn assert_renewed_and_paid_once(f: &Fixture, subscriptions: &[SubscriptionId]) {
    for subscription in subscriptions {
        let billed = invoices(f, subscription).await;
        assert_eq!(billed.len(), 2, "{subscription}: two periods, two invoices");
        assert_eq!(billed[1].status, "paid", "{subscription}");
        let charged = payments(f, &billed[1]).await;
        assert_eq!(
            charged.len(),
            1,
            "{subscription}: charged once: {charged:?}"
        );
        assert_eq!(charged[0].status, "succeeded");
    }
}

async fn assert_gapless(f: &Fixture, count: i64) {
    let series = f.app.invoice_numbering(f.principal()).await.unwrap();
    assert_eq!(
        (i64::from(series[0].last), series[0].count),
        (count, count),
        "gapless"
    );
}

/// The types of an aggregate's events, in order, and whether its last was written by a
/// step of a flow (one renewal at a time: each command of a flow is a numbered step) rather
/// than by a batch (whose flow writes all its steps at once).
fn types_and_flow<A: Aggregate>(history: &[cqrs_es::EventEnvelope<A>]) -> (Vec<String>, bool) {
    let types = history.iter().map(|e| e.payload.event_type()).collect();
    let in_flow = history
        .last()
        .is_some_and(|e| e.metadata.contains_key("flowStep"));
    (types, in_flow)
}

/// The subscription's, its renewal invoice's and that invoice's charge's event types, and
/// whether the renewal was written in a flow of its own.
async fn renewal_events(f: &Fixture, subscription: &SubscriptionId) -> (Vec<Vec<String>>, bool) {
    let billed = invoices(f, subscription).await;
    let charge = &payments(f, &billed[1]).await[0];
    let (subscription_types, subscription_flow) = types_and_flow(
        &f.app
            .subscriptions
            .history(subscription.as_str())
            .await
            .unwrap(),
    );
    let (invoice_types, invoice_flow) =
        types_and_flow(&f.app.invoices.history(&billed[1].id).await.unwrap());
    let (payment_types, payment_flow) =
        types_and_flow(&f.app.payments.history(&charge.id).await.unwrap());
    assert_eq!(subscription_flow, invoice_flow);
    assert_eq!(invoice_flow, payment_flow);
    (
        vec![subscription_types, invoice_types, payment_types],
        invoice_flow,
    )
}

/// Every row of `table`, in a stable order.
async fn rows(f: &Fixture, table: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT to_jsonb(t)::text FROM {table} t ORDER BY to_jsonb(t)::text"
    ))
    .fetch_all(&f.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_cohort_renewed_in_bulk_is_billed_as_a_renewal_alone_is() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    let together = cohort(&f, &plan, "cohort", COHORT).await;
    // A day later, one more: its period ends alone, and it is renewed one by one.
    advance(&f, &f.app, Duration::days(1)).await;
    let alone = cohort(&f, &plan, "alone", 1).await;
    // The scheduler takes all that is due at once (an advance takes a second's at a time,
    // and a slow set-up may spread the cohort over more than one).
    let cohort_ends = last_period_end(&f, &together).await;
    scheduler_at(&f, &f.app, cohort_ends + Duration::hours(1)).await;
    scheduler_at(
        &f,
        &f.app,
        last_period_end(&f, &alone).await + Duration::hours(1),
    )
    .await;

    let mut all = together.clone();
    all.extend(alone.clone());
    assert_renewed_and_paid_once(&f, &all).await;
    assert_gapless(&f, 2 * all.len() as i64).await;

    let (alone_events, alone_in_flow) = renewal_events(&f, &alone[0]).await;
    assert!(
        alone_in_flow,
        "the one renewal alone ran in a flow of its own"
    );
    for subscription in &together {
        let (events, in_flow) = renewal_events(&f, subscription).await;
        assert!(!in_flow, "{subscription}: renewed in bulk");
        assert_eq!(events, alone_events, "{subscription}: the same events");
    }

    // The read models the batch's statements wrote are what its events rebuild to.
    for (model, table) in [
        ("subscription_list", "subscription_list"),
        ("invoice_list", "invoice_list"),
        ("document_numbers", "document_numbers"),
        ("payment_list", "payment_list"),
        ("payment_totals", "payment_totals"),
    ] {
        let live = rows(&f, table).await;
        assert!(!live.is_empty(), "{table}");
        rebuild(&f, model).await;
        assert_eq!(rows(&f, table).await, live, "{model} equals its rebuild");
    }
}

#[tokio::test]
async fn a_bulk_renewal_cut_after_either_write_bills_and_charges_each_period_once() {
    for after in 1..=2 {
        let f = Fixture::new().await;
        let plan = f.plan().await;
        let subscriptions = cohort(&f, &plan, "cohort", COHORT).await;
        let dying = App::new(f.pool.clone()).with_death(DeathPlan {
            kind: BULK_RENEWAL.into(),
            after_commits: after,
            abort: false,
        });
        // Its scheduler takes the whole cohort at once, and dies in a batch.
        let renewed_at = last_period_end(&f, &subscriptions).await + Duration::hours(1);
        set_clock_offset(&f, renewed_at - Utc::now()).await;
        dying.load_test_clocks().await.unwrap();
        let died = tokio::spawn({
            let dying = dying.clone();
            async move { dying.run_scheduler_once().await }
        })
        .await;
        assert!(died.is_err_and(|e| e.is_panic()), "cut after write {after}");
        dying.instance.stop_living().await;

        // Renewed and issued (the series gapless) whichever write it died after; cut after
        // the first, the batch's charges are still pending (the other batch may have ended).
        let mut unpaid = 0;
        for subscription in &subscriptions {
            let billed = invoices(&f, subscription).await;
            assert_eq!(billed.len(), 2, "cut after write {after}");
            if billed[1].status == "issued" {
                unpaid += 1;
            } else {
                assert_eq!(billed[1].status, "paid", "cut after write {after}");
            }
        }
        assert_eq!(
            unpaid > 0,
            after == 1,
            "cut after write {after}: {unpaid} unpaid"
        );
        assert_gapless(&f, 2 * COHORT as i64).await;

        // The next advance, on a live instance, first finishes the batch the dead one left
        // (asking the provider again under the same keys), and renews nothing twice.
        f.app.load_test_clocks().await.unwrap();
        advance(&f, &f.app, Duration::minutes(2)).await;
        assert_renewed_and_paid_once(&f, &subscriptions).await;
        assert_gapless(&f, 2 * COHORT as i64).await;
    }
}

#[tokio::test]
async fn two_instances_renewing_one_cohort_in_bulk_bill_each_period_once() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    let subscriptions = cohort(&f, &plan, "cohort", 2 * COHORT).await;
    // Move the clock without running anything, then let two instances' schedulers race.
    let (one, two) = two_instances_after(&f, Duration::days(32)).await;
    race_schedulers(&one, &two).await;
    assert_renewed_and_paid_once(&f, &subscriptions).await;
    assert_gapless(&f, 2 * subscriptions.len() as i64).await;
    let mut in_bulk = 0;
    for subscription in &subscriptions {
        if !renewal_events(&f, subscription).await.1 {
            in_bulk += 1;
        }
    }
    assert!(in_bulk > 0, "the race was one of batches");
}
