//! Credits through their use-cases: grants, usage drawn from them and never overdrawn under
//! concurrency, one usage per idempotency key also when two race, overage only where the plan
//! bills it, balances at the tenant's now (an expiry counts before it is recorded), revocation,
//! and the `credit_balances` read model equal to its rebuild.

use app::credits::{NewCreditGrant, NewUsage, RecordedUsage};
use app::plans::NewPlan;
use app::AppError;
use chrono::Duration;
use domain::id::CustomerId;
use futures::future::join_all;
use serde_json::json;

use crate::support::{assert_not_found, rebuild, Fixture};

fn grant_of(customer: &CustomerId, amount: i64) -> NewCreditGrant {
    NewCreditGrant {
        customer_id: Some(customer.to_string()),
        feature_slug: Some("api_calls".into()),
        amount: Some(amount),
        ..NewCreditGrant::default()
    }
}

fn usage_of(customer: &CustomerId, quantity: i64, key: &str) -> NewUsage {
    NewUsage {
        customer_id: Some(customer.to_string()),
        feature_slug: Some("api_calls".into()),
        quantity: Some(quantity),
        idempotency_key: Some(key.into()),
        ..NewUsage::default()
    }
}

async fn remaining(f: &Fixture, customer: &CustomerId) -> i64 {
    f.app
        .credit_balances(f.principal(), customer.as_str())
        .await
        .unwrap()
        .iter()
        .find(|balance| balance.feature_slug == "api_calls")
        .map_or(0, |balance| balance.remaining)
}

fn insufficient<T: std::fmt::Debug>(result: &Result<T, AppError>) -> bool {
    matches!(result, Err(AppError::PaymentFailed { message, .. }) if message == "Insufficient credits")
}

#[tokio::test]
async fn a_hundred_concurrent_usages_of_one_against_fifty_credits_accept_exactly_fifty() {
    let f = Fixture::new().await;
    let customer = f.customer("fifty@example.com").await;
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 50))
        .await
        .unwrap();
    // Two app instances, as two processes: the ledger's version decides, not a lock.
    let other = app::App::new(f.pool.clone());
    let metadata = &f.metadata;
    let outcomes = join_all((0..100).map(|n| {
        let app = if n % 2 == 0 { &f.app } else { &other };
        let usage = usage_of(&customer, 1, &format!("k{n}"));
        async move { app.record_usage(metadata, usage).await }
    }))
    .await;
    let accepted = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|outcome| insufficient(outcome))
        .count();
    assert_eq!((accepted, refused), (50, 50), "{outcomes:?}");
    assert_eq!(remaining(&f, &customer).await, 0);
    let grants = f
        .app
        .credit_grants(f.principal(), customer.as_str(), None)
        .await
        .unwrap();
    assert_eq!(grants[0].remaining_amount, 0);
    assert_eq!(
        grants[0].status_at(f.app.clock.now_for(f.tenant())),
        "depleted"
    );
}

#[tokio::test]
async fn one_idempotency_key_is_one_usage_also_when_two_calls_race() {
    let f = Fixture::new().await;
    let customer = f.customer("once@example.com").await;
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 10))
        .await
        .unwrap();
    let other = app::App::new(f.pool.clone());
    let (first, second) = tokio::join!(
        f.app
            .record_usage(&f.metadata, usage_of(&customer, 3, "same")),
        other.record_usage(&f.metadata, usage_of(&customer, 3, "same")),
    );
    let (first, second): (RecordedUsage, RecordedUsage) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    assert_eq!(first.outcome.credits_consumed, 3);
    assert_eq!(first.outcome.remaining_after, 7);
    assert_eq!(remaining(&f, &customer).await, 7);
    // Later, the same key still answers the first usage and consumes nothing.
    let again = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 3, "same"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(remaining(&f, &customer).await, 7);
}

#[tokio::test]
async fn usage_beyond_the_credits_is_overage_only_where_the_plan_bills_it() {
    let f = Fixture::new().await;
    let customer = f.customer("metered@example.com").await;
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 10))
        .await
        .unwrap();
    let refused = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 15, "k1"))
        .await;
    assert!(insufficient(&refused), "{refused:?}");
    assert_eq!(
        remaining(&f, &customer).await,
        10,
        "a refused usage consumes nothing"
    );

    let plan = f
        .app
        .create_plan(
            &f.metadata,
            NewPlan {
                name: Some("Metered".into()),
                currency: Some("USD".into()),
                pricing_data: Some(json!({"components": [
                    {"type": "usage", "name": "API calls", "featureSlug": "api_calls",
                     "unitAmountCents": 2},
                ]})),
                ..NewPlan::default()
            },
        )
        .await
        .unwrap();
    let card = f.card(&customer, "4242").await;
    f.start(&customer, &plan.id.unwrap(), Some(&card))
        .await
        .unwrap();
    let billed = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 15, "k2"))
        .await
        .unwrap();
    assert_eq!(
        (
            billed.outcome.credits_consumed,
            billed.outcome.overage_units
        ),
        (10, 5)
    );
    assert_eq!(remaining(&f, &customer).await, 0);
}

#[tokio::test]
async fn an_expired_grant_counts_for_nothing_before_its_expiry_is_recorded() {
    let f = Fixture::new().await;
    let customer = f.customer("expiring@example.com").await;
    let now = f.app.test_clock(f.principal()).unwrap();
    f.app
        .grant_credits(
            &f.metadata,
            NewCreditGrant {
                expires_at: Some(now + Duration::days(1)),
                ..grant_of(&customer, 30)
            },
        )
        .await
        .unwrap();
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 5))
        .await
        .unwrap();
    let balances = f
        .app
        .credit_balances(f.principal(), customer.as_str())
        .await
        .unwrap();
    assert_eq!(
        (
            balances[0].remaining,
            balances[0].total,
            balances[0].next_expiry
        ),
        (35, 35, Some(now + Duration::days(1)))
    );
    f.app
        .advance_test_clock(f.principal(), now + Duration::days(2))
        .await
        .unwrap();
    assert_eq!(remaining(&f, &customer).await, 5);
    let refused = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 6, "k1"))
        .await;
    assert!(insufficient(&refused), "{refused:?}");
    let grants = f
        .app
        .credit_grants(f.principal(), customer.as_str(), Some("api_calls"))
        .await
        .unwrap();
    let status = f.app.test_clock(f.principal()).unwrap();
    assert_eq!(grants[0].status_at(status), "expired");
    // The advance did what fell due on the way: the expiry is recorded, at its own time,
    // forfeiting all 30.
    assert_eq!(grants[0].ended.as_deref(), Some("expired"));
    assert_eq!(grants[0].ended_at, Some(now + Duration::days(1)));
    let forfeited: i64 = sqlx::query_scalar(
        "SELECT (payload::jsonb -> 'CreditGrantExpired' ->> 'forfeited')::bigint FROM events \
         WHERE event_type = 'CreditGrantExpired'",
    )
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(forfeited, 30);
    assert_eq!(
        grants[1].ended, None,
        "the grant that never expires goes on"
    );
}

#[tokio::test]
async fn a_revoked_grant_forfeits_what_is_left_and_another_tenants_is_not_found() {
    let f = Fixture::new().await;
    let customer = f.customer("revoked@example.com").await;
    let grant = f
        .app
        .grant_credits(&f.metadata, grant_of(&customer, 20))
        .await
        .unwrap();
    f.app
        .record_usage(&f.metadata, usage_of(&customer, 5, "k1"))
        .await
        .unwrap();
    let other = Fixture::new().await;
    assert_not_found(
        other
            .app
            .revoke_credit_grant(&other.metadata, &grant.id)
            .await,
        "Credit grant not found",
    );
    let revoked = f
        .app
        .revoke_credit_grant(&f.metadata, &grant.id)
        .await
        .unwrap();
    assert_eq!(revoked.ended.as_deref(), Some("revoked"));
    assert_eq!(revoked.remaining_amount, 15);
    assert_eq!(remaining(&f, &customer).await, 0);
    let again = f.app.revoke_credit_grant(&f.metadata, &grant.id).await;
    assert!(
        matches!(&again, Err(AppError::Conflict { message, .. }) if message == "Credit grant is already revoked"),
        "{again:?}"
    );
}

#[tokio::test]
async fn bad_grants_and_usages_are_refused_and_change_nothing() {
    let f = Fixture::new().await;
    let customer = f.customer("bad@example.com").await;
    let now = f.app.test_clock(f.principal()).unwrap();
    let bad_grants = [
        NewCreditGrant {
            amount: Some(0),
            ..grant_of(&customer, 1)
        },
        NewCreditGrant {
            amount: Some(-3),
            ..grant_of(&customer, 1)
        },
        NewCreditGrant {
            feature_slug: Some("API Calls".into()),
            ..grant_of(&customer, 1)
        },
        NewCreditGrant {
            source: Some("topup".into()),
            ..grant_of(&customer, 1)
        },
        NewCreditGrant {
            starts_at: Some(now + Duration::days(2)),
            expires_at: Some(now + Duration::days(1)),
            ..grant_of(&customer, 1)
        },
    ];
    for bad in bad_grants {
        let refused = f.app.grant_credits(&f.metadata, bad.clone()).await;
        assert!(
            matches!(refused, Err(AppError::Invalid { .. })),
            "{bad:?}: {refused:?}"
        );
    }
    let unknown = f
        .app
        .grant_credits(
            &f.metadata,
            grant_of(&CustomerId::parse("cust_nobody").unwrap(), 1),
        )
        .await;
    assert_not_found(unknown, app::customers::NOT_FOUND);
    assert!(f
        .app
        .credit_grants(f.principal(), customer.as_str(), None)
        .await
        .unwrap()
        .is_empty());
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 5))
        .await
        .unwrap();
    for (quantity, key) in [(0, "a"), (-1, "b"), (1, ""), (1, &"k".repeat(256) as &str)] {
        let refused = f
            .app
            .record_usage(&f.metadata, usage_of(&customer, quantity, key))
            .await;
        assert!(
            matches!(refused, Err(AppError::Invalid { .. })),
            "{quantity} {key}: {refused:?}"
        );
    }
    assert_eq!(remaining(&f, &customer).await, 5);
}

#[tokio::test]
async fn credit_balances_equals_its_rebuild() {
    let f = Fixture::new().await;
    let mut customers = Vec::new();
    for n in 0..4 {
        let customer = f.customer(&format!("rebuild{n}@example.com")).await;
        f.app
            .grant_credits(&f.metadata, grant_of(&customer, 10 + n))
            .await
            .unwrap();
        let second = f
            .app
            .grant_credits(
                &f.metadata,
                NewCreditGrant {
                    priority: Some(10),
                    ..grant_of(&customer, 3)
                },
            )
            .await
            .unwrap();
        for k in 0..3 {
            let _ = f
                .app
                .record_usage(&f.metadata, usage_of(&customer, 2 + k, &format!("u{k}")))
                .await;
        }
        if n % 2 == 0 {
            f.app
                .revoke_credit_grant(&f.metadata, &second.id)
                .await
                .unwrap();
        }
        customers.push(customer);
    }
    let rows = || async {
        sqlx::query_scalar::<_, String>("SELECT to_jsonb(g)::text FROM credit_grants g ORDER BY id")
            .fetch_all(&f.pool)
            .await
            .unwrap()
    };
    let live = rows().await;
    assert_eq!(live.len(), 8);
    rebuild(&f, "credit_balances").await;
    assert_eq!(rows().await, live);
}

#[tokio::test]
async fn a_plan_grants_its_credits_each_period_and_they_expire_at_its_end() {
    let f = Fixture::new().await;
    let customer = f.customer("allowance@example.com").await;
    let plan = f
        .app
        .create_plan(
            &f.metadata,
            NewPlan {
                name: Some("Pro".into()),
                currency: Some("USD".into()),
                pricing_data: Some(json!({"components": [
                    {"type": "flat", "name": "Pro", "amountCents": 1000},
                ]})),
                credits: vec![domain::plan::AllowanceInput {
                    feature_slug: Some("api_calls".into()),
                    name: Some("API calls".into()),
                    amount: Some(100),
                    rollover: None,
                }],
                ..NewPlan::default()
            },
        )
        .await
        .unwrap();
    let card = f.card(&customer, "4242").await;
    let started = f
        .start(&customer, &plan.id.unwrap(), Some(&card))
        .await
        .unwrap();
    let period_end = started.current_period_end.unwrap();
    let balances = f
        .app
        .credit_balances(f.principal(), customer.as_str())
        .await
        .unwrap();
    assert_eq!(
        (balances[0].remaining, balances[0].next_expiry),
        (100, Some(period_end))
    );
    f.app
        .record_usage(&f.metadata, usage_of(&customer, 30, "k1"))
        .await
        .unwrap();

    // The period ends: its 70 left expire, the next period brings 100 again, once.
    f.app
        .advance_test_clock(f.principal(), period_end + Duration::hours(1))
        .await
        .unwrap();
    f.app.run_scheduler_once().await;
    assert_eq!(remaining(&f, &customer).await, 100);
    let (ledger, _) = f
        .app
        .credit_transactions(f.principal(), customer.as_str(), None, None, 100)
        .await
        .unwrap();
    let entries: Vec<(&str, i64)> = ledger
        .iter()
        .map(|entry| (entry.kind.as_str(), entry.amount))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("grant", 100),
            ("usage", -30),
            ("expiry", -70),
            ("grant", 100)
        ]
    );
    let grants = f
        .app
        .credit_grants(f.principal(), customer.as_str(), None)
        .await
        .unwrap();
    assert!(grants.iter().all(|grant| grant.source == "subscription"));
}

#[tokio::test]
async fn usage_beyond_the_credits_is_billed_on_the_next_periods_invoice() {
    let f = Fixture::new().await;
    let customer = f.customer("arrears@example.com").await;
    let plan = f
        .app
        .create_plan(
            &f.metadata,
            NewPlan {
                name: Some("Metered".into()),
                currency: Some("USD".into()),
                pricing_data: Some(json!({"components": [
                    {"type": "flat", "name": "Base", "amountCents": 1000},
                    {"type": "usage", "name": "API calls", "featureSlug": "api_calls",
                     "unitAmountCents": 2},
                ]})),
                credits: vec![domain::plan::AllowanceInput {
                    feature_slug: Some("api_calls".into()),
                    amount: Some(10),
                    ..domain::plan::AllowanceInput::default()
                }],
                ..NewPlan::default()
            },
        )
        .await
        .unwrap();
    let card = f.card(&customer, "4242").await;
    let started = f
        .start(&customer, &plan.id.unwrap(), Some(&card))
        .await
        .unwrap();
    let (period_start, period_end) = (
        started.current_period_start.unwrap(),
        started.current_period_end.unwrap(),
    );
    let used = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 25, "k1"))
        .await
        .unwrap();
    assert_eq!(
        (used.outcome.credits_consumed, used.outcome.overage_units),
        (10, 15)
    );
    f.app
        .advance_test_clock(f.principal(), period_end + Duration::hours(1))
        .await
        .unwrap();
    let filter = projections::read_models::invoice_list::InvoiceFilter {
        customer_id: Some(customer.to_string()),
        ..Default::default()
    };
    let (invoices, _) = f
        .app
        .list_invoices(f.principal(), &filter, None, 10)
        .await
        .unwrap();
    assert_eq!(invoices.len(), 2);
    let renewal = &invoices[0];
    // The base in advance, and the first period's 15 units beyond credits at 2 cents.
    assert_eq!(renewal.total_amount_cents, 1000 + 15 * 2);
    let overage = renewal
        .lines
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["description"] == "API calls (usage beyond credits)")
        .expect("an overage line")
        .clone();
    assert_eq!(overage["quantity"], 15);
    assert_eq!(
        overage["periodStart"].as_str().map(str::to_owned),
        Some(period_start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
    assert_eq!(renewal.status, "paid");
    // The first invoice had no usage to bill: it was the first period.
    assert_eq!(invoices[1].total_amount_cents, 1000);
}

/// A repeated key answers the first recording also once the credits have run out: not a 402.
#[tokio::test]
async fn a_repeated_key_answers_the_first_usage_after_the_credits_ran_out() {
    let f = Fixture::new().await;
    let customer = f.customer("repeat@example.com").await;
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 10))
        .await
        .unwrap();
    let first = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 10, "all-of-it"))
        .await
        .unwrap();
    assert_eq!(first.outcome.remaining_after, 0);
    let again = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 10, "all-of-it"))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert!(insufficient(
        &f.app
            .record_usage(&f.metadata, usage_of(&customer, 1, "another"))
            .await
    ));
}

/// Each instance keeps the ledgers' states it used in memory; what another instance wrote
/// since is never missed: a grant there is drawn here, and usages taking turns between the
/// two draw exactly what was granted.
#[tokio::test]
async fn a_ledger_remembered_by_one_instance_sees_what_another_wrote() {
    let f = Fixture::new().await;
    let customer = f.customer("two-instances@example.com").await;
    let other = app::App::new(f.pool.clone());
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 5))
        .await
        .unwrap();
    f.app
        .record_usage(&f.metadata, usage_of(&customer, 5, "here-1"))
        .await
        .unwrap();
    // This instance remembers a ledger with nothing left; the other grants more.
    other
        .grant_credits(&f.metadata, grant_of(&customer, 7))
        .await
        .unwrap();
    let drawn = f
        .app
        .record_usage(&f.metadata, usage_of(&customer, 3, "here-2"))
        .await
        .expect("the other instance's grant is drawn");
    assert_eq!(drawn.outcome.remaining_after, 4);
    for n in 0..4 {
        let (app, key) = if n % 2 == 0 {
            (&other, format!("there-{n}"))
        } else {
            (&f.app, format!("here-turn-{n}"))
        };
        let used = app
            .record_usage(&f.metadata, usage_of(&customer, 1, &key))
            .await
            .unwrap();
        assert_eq!(used.outcome.remaining_after, 3 - n, "turn {n}");
    }
    assert!(insufficient(
        &f.app
            .record_usage(&f.metadata, usage_of(&customer, 1, "here-last"))
            .await
    ));
    assert_eq!(remaining(&f, &customer).await, 0);
}

/// The ledger's usages as the log holds them: how many, and in how many commits (usages that
/// queued behind one another share one: `coalesced_commands.rs`).
async fn recorded_usages(f: &Fixture, customer: &CustomerId) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT transaction_id) FROM events \
         WHERE aggregate_type = 'CreditLedger' AND aggregate_id = $1 \
           AND event_type = 'UsageRecorded'",
    )
    .bind(format!("{customer}/api_calls"))
    .fetch_one(&f.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn usages_queued_on_one_ledger_share_a_commit_and_each_gets_its_own_answer() {
    let f = Fixture::new().await;
    let customer = f.customer("queued@example.com").await;
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 30))
        .await
        .unwrap();
    let metadata = &f.metadata;
    let outcomes = join_all((0..40).map(|n| {
        let usage = usage_of(&customer, 1, &format!("q{n}"));
        let app = &f.app;
        async move { app.record_usage(metadata, usage).await }
    }))
    .await;
    let accepted: Vec<&RecordedUsage> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    let refused = outcomes.iter().filter(|o| insufficient(o)).count();
    assert_eq!((accepted.len(), refused), (30, 10), "{outcomes:?}");
    // Each answer is the state its own usage left: thirty different usages, one of each
    // remainder from 29 down to 0.
    let mut ids: Vec<String> = accepted
        .iter()
        .map(|usage| usage.outcome.usage_id.to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    let mut remainders: Vec<i64> = accepted
        .iter()
        .map(|usage| usage.outcome.remaining_after)
        .collect();
    remainders.sort();
    assert_eq!(remainders, (0..30).collect::<Vec<i64>>());
    assert_eq!(remaining(&f, &customer).await, 0);
    // The first usage found the turn free; the rest queued behind it and were appended
    // together: far fewer commits than usages.
    let (usages, commits) = recorded_usages(&f, &customer).await;
    assert_eq!(usages, 30);
    assert!(commits <= 3, "{commits} commits for 30 usages");
}

#[tokio::test]
async fn a_key_repeated_among_queued_usages_is_one_usage() {
    let f = Fixture::new().await;
    let customer = f.customer("queued-once@example.com").await;
    f.app
        .grant_credits(&f.metadata, grant_of(&customer, 100))
        .await
        .unwrap();
    let metadata = &f.metadata;
    // Ten calls under one key among ten under keys of their own, all queued together: the
    // batch's append breaks the key's claim, and its usages are decided one at a time.
    let outcomes = join_all((0..20).map(|n| {
        let key = if n % 2 == 0 {
            "same".to_owned()
        } else {
            format!("own{n}")
        };
        let usage = usage_of(&customer, 2, &key);
        let app = &f.app;
        async move { app.record_usage(metadata, usage).await }
    }))
    .await;
    let answers: Vec<RecordedUsage> = outcomes.into_iter().map(Result::unwrap).collect();
    let same: Vec<&RecordedUsage> = answers.iter().step_by(2).collect();
    assert!(same.iter().all(|answer| *answer == same[0]), "{same:?}");
    // Eleven usages of two: the repeated key consumed once.
    assert_eq!(remaining(&f, &customer).await, 100 - 11 * 2);
    let (recorded, _) = recorded_usages(&f, &customer).await;
    assert_eq!(recorded, 11);
}
