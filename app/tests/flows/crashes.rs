//! Every multi-step flow cut after each of its steps, as a process killed there would leave it:
//! an app dies right after its n-th command committed (a death plan makes its flow's task
//! panic, which ends it as abruptly as `kill -9`, and drops its connections), its instance's
//! liveness ends, and a second app resumes what the first left. Each flow must end as if it
//! had never been cut. (`api/tests/crash.rs` kills a real process the same way.)

use std::future::Future;

use app::customers::NewCustomer;
use app::flows::DeathPlan;
use app::idempotency::{request_hash, KeyClaim};
use app::setup_intents::{CardInput, StartedSetup};
use app::{App, CommandMetadata};
use domain::id::{CustomerId, PaymentMethodId};
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::payment_method_list::PaymentMethodListProjection;

use crate::support::{sandbox_card, start, Fixture};

/// Runs `flow` on an app that dies right after its `after_commits`-th command of a `kind` flow;
/// then that instance is gone, and another resumes what it left. Returns the other app.
async fn cut<F, Fut, T>(f: &Fixture, kind: &str, after_commits: usize, flow: F) -> App
where
    F: FnOnce(App) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let dying = App::new(f.pool.clone()).with_death(DeathPlan {
        kind: kind.to_owned(),
        after_commits,
        abort: false,
    });
    let outcome = tokio::spawn(flow(dying.clone())).await;
    assert!(
        outcome.is_err_and(|e| e.is_panic()),
        "the {kind} flow did not reach its commit {after_commits}"
    );
    dying.instance.stop_living().await;
    let survivor = App::new(f.pool.clone());
    let finished = survivor
        .resume_abandoned_flows()
        .await
        .expect("resume the flows");
    assert_eq!(finished, 1, "the cut {kind} flow is resumed once");
    assert_eq!(
        survivor.resume_abandoned_flows().await.expect("resume"),
        0,
        "nothing is left to resume"
    );
    survivor
}

/// A customer with a card and a live subscription charged to it.
async fn subscribed(f: &Fixture, email: &str) -> (CustomerId, PaymentMethodId) {
    let customer = f.customer(email).await;
    let card = f.card(&customer, "4242").await;
    let plan = f.plan().await;
    f.start(&customer, &plan, Some(&card)).await.expect("start");
    (customer, card)
}

#[tokio::test]
async fn a_start_cut_after_each_step_is_finished_with_the_same_subscription() {
    for after in 1..=2 {
        let f = Fixture::new().await;
        let customer = f.customer("start@example.com").await;
        let card = f.card(&customer, "4242").await;
        let plan = f.plan().await;
        let metadata = f.metadata.clone();
        let (c, p, k) = (customer.clone(), plan.clone(), card.clone());
        cut(&f, "subscription.start", after, move |app| async move {
            start(&app, &metadata, &c, &p, Some(&k)).await
        })
        .await;

        let live = f
            .live_subscription(&customer)
            .await
            .unwrap_or_else(|| panic!("cut after step {after}: no live subscription"));
        assert_eq!(
            live.payment_method_id.as_deref(),
            Some(card.as_str()),
            "cut after step {after}"
        );
        assert_eq!(f.linked(&card).await, Some(live.id.clone()));
        let subscriptions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM subscription_list WHERE customer_id = $1")
                .bind(customer.as_str())
                .fetch_one(&f.pool)
                .await
                .unwrap();
        assert_eq!(subscriptions, 1, "cut after step {after}: one subscription");
    }
}

#[tokio::test]
async fn a_cancel_cut_after_each_step_is_finished_and_frees_the_card() {
    for after in 1..=2 {
        let f = Fixture::new().await;
        let (customer, card) = subscribed(&f, "cancel@example.com").await;
        let subscription = f.live_subscription(&customer).await.expect("live").id;
        let metadata = f.metadata.clone();
        let id = subscription.clone();
        cut(&f, "subscription.cancel", after, move |app| async move {
            app.cancel_subscription(&metadata, id.as_str()).await
        })
        .await;

        assert!(
            f.subscription(&subscription).await.canceled_at.is_some(),
            "cut after step {after}"
        );
        assert_eq!(f.linked(&card).await, None, "cut after step {after}");
        f.app
            .remove_payment_method(&f.metadata, card.as_str())
            .await
            .expect("the freed card can be removed");
    }
}

#[tokio::test]
async fn a_cascade_delete_cut_after_each_step_is_finished() {
    for after in 1..=3 {
        let f = Fixture::new().await;
        let (customer, card) = subscribed(&f, "delete@example.com").await;
        let subscription = f.live_subscription(&customer).await.expect("live").id;
        let metadata = f.metadata.clone();
        let id = customer.clone();
        cut(&f, "customer.delete", after, move |app| async move {
            app.delete_customer(&metadata, id.as_str(), true).await
        })
        .await;

        let listed = CustomerListProjection::get(&f.pool, f.tenant(), customer.as_str())
            .await
            .unwrap();
        assert!(listed.is_none(), "cut after step {after}: still listed");
        assert!(f.subscription(&subscription).await.canceled_at.is_some());
        assert_eq!(f.linked(&card).await, None, "cut after step {after}");
        let canceled: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT payload FROM events \
             WHERE aggregate_id = $1 AND event_type = 'SoftDeleted'",
        )
        .bind(customer.as_str())
        .fetch_all(&f.pool)
        .await
        .unwrap();
        assert_eq!(canceled.len(), 1, "one delete");
        assert!(
            canceled[0].to_string().contains(subscription.as_str()),
            "cut after step {after}: the delete names what it canceled: {}",
            canceled[0]
        );
    }
}

#[tokio::test]
async fn a_move_cut_after_each_step_is_finished_and_frees_the_old_card() {
    for after in 1..=3 {
        let f = Fixture::new().await;
        let (customer, first) = subscribed(&f, "move@example.com").await;
        // Adding a second card makes it the default: the subscription moves to it.
        let second = f.card(&customer, "5555").await;
        let subscription = f.live_subscription(&customer).await.expect("live").id;
        assert_eq!(f.linked(&second).await, Some(subscription.clone()));
        let metadata = f.metadata.clone();
        let (c, back) = (customer.clone(), first.clone());
        cut(&f, "subscription.move", after, move |app| async move {
            app.set_subscription_payment_method(&metadata, &c, Some(back.as_str()))
                .await
        })
        .await;

        let moved = f.subscription(&subscription).await;
        assert_eq!(
            moved.payment_method_id.as_ref(),
            Some(&first),
            "cut after step {after}"
        );
        assert_eq!(f.linked(&first).await, Some(subscription.clone()));
        assert_eq!(f.linked(&second).await, None, "cut after step {after}");
    }
}

#[tokio::test]
async fn an_add_cut_after_each_step_makes_the_card_the_default() {
    for after in 1..=4 {
        let f = Fixture::new().await;
        let (customer, first) = subscribed(&f, "add@example.com").await;
        let subscription = f.live_subscription(&customer).await.expect("live").id;
        let metadata = f.metadata.clone();
        let second = PaymentMethodId::generate();
        let (c, id) = (customer.clone(), second.clone());
        cut(&f, "paymentMethod.add", after, move |app| async move {
            app.add_collected_payment_method(&metadata, &c, id, sandbox_card("5555"))
                .await
        })
        .await;

        assert!(f.method(&second).await.exists(), "cut after step {after}");
        let moved = f.subscription(&subscription).await;
        assert_eq!(
            moved.payment_method_id.as_ref(),
            Some(&second),
            "cut after step {after}"
        );
        assert_eq!(f.linked(&second).await, Some(subscription.clone()));
        assert_eq!(f.linked(&first).await, None, "cut after step {after}");
    }
}

/// A keyed create whose process died after the customer was written: the key's retry, once
/// that instance is gone, answers with the customer the first run made, and makes no other.
#[tokio::test]
async fn a_keyed_create_cut_after_its_write_is_answered_by_its_retry_with_the_same_customer() {
    let f = Fixture::new().await;
    let hash = request_hash("POST", "/v1/customers", b"{}");
    let dying = App::new(f.pool.clone()).with_death(DeathPlan {
        kind: app::flows::KEYED_REQUEST.to_owned(),
        after_commits: 1,
        abort: false,
    });
    let keyed = |app: App, metadata: CommandMetadata| {
        let hash = hash.clone();
        async move {
            let KeyClaim::Run { flow } = app
                .claim_idempotency_key(&metadata.principal, "create-once", &hash)
                .await
                .expect("claim")
            else {
                panic!("a replay for a new key");
            };
            let metadata = CommandMetadata {
                flow: Some(flow),
                ..metadata
            };
            let new = NewCustomer {
                email: Some("once@example.com".into()),
                ..NewCustomer::default()
            };
            app.create_customer(&metadata, new).await
        }
    };
    let outcome = tokio::spawn(keyed(dying.clone(), f.metadata.clone())).await;
    assert!(outcome.is_err_and(|e| e.is_panic()), "it died");
    let written: Vec<String> = sqlx::query_scalar("SELECT id FROM customer_list")
        .fetch_all(&f.pool)
        .await
        .unwrap();
    assert_eq!(written.len(), 1, "the first run wrote the customer");

    // While the first instance lives, its request is in flight.
    let survivor = App::new(f.pool.clone());
    let in_flight = survivor
        .claim_idempotency_key(f.principal(), "create-once", &hash)
        .await;
    assert!(
        matches!(&in_flight, Err(app::AppError::Conflict { code, .. }) if *code == "idempotency_key_in_flight"),
        "{in_flight:?}"
    );
    dying.instance.stop_living().await;
    let retried = keyed(survivor, f.metadata.clone())
        .await
        .expect("the retry answers");
    assert_eq!(retried.id.as_str(), written[0], "the same customer");
    let customers: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_list")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    assert_eq!(customers, 1, "made once");
}

/// A sandbox confirm cut after it claimed its intent (or after it added the card): the card is
/// added and the intent stays confirmed, where a cut once left the intent used up and no card.
#[tokio::test]
async fn a_sandbox_confirm_cut_after_its_claim_adds_the_card() {
    for after in 1..=2 {
        let f = Fixture::new().await;
        let customer = f.external_customer("confirm@example.com", "user_1").await;
        let started = f
            .app
            .create_setup_intent(&f.metadata, Some("user_1"))
            .await
            .expect("an intent");
        let StartedSetup::Sandbox { intent_id } = started else {
            panic!("a sandbox intent: {started:?}");
        };
        let metadata = f.metadata.clone();
        let id = intent_id.clone();
        cut(&f, "paymentMethod.add", after, move |app| async move {
            let card = CardInput {
                number: Some("4242424242424242".into()),
                exp_month: Some(12),
                exp_year: Some(2030),
            };
            app.confirm_sandbox_setup_intent(&metadata, &id, card).await
        })
        .await;

        let cards = PaymentMethodListProjection::for_customer(&f.pool, f.tenant(), &customer.id)
            .await
            .unwrap();
        assert_eq!(cards.len(), 1, "cut after step {after}: one card");
        let again = f
            .app
            .confirm_sandbox_setup_intent(
                &f.metadata,
                &intent_id,
                CardInput {
                    number: Some("4242424242424242".into()),
                    exp_month: Some(12),
                    exp_year: Some(2030),
                },
            )
            .await;
        assert!(
            matches!(again, Err(app::AppError::Conflict { .. })),
            "the intent stays confirmed: {again:?}"
        );
    }
}
