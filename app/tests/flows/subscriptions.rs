//! Subscriptions: one live subscription per customer (also when starts race), the card a
//! subscription charges is linked to it for as long as it is live, and a start that fails takes
//! its link back, or hands it to the subscription that won.

use std::time::Duration;

use app::refusals::ALREADY_SUBSCRIBED;
use app::AppError;
use domain::id::SubscriptionId;
use domain::payment_method::PaymentMethodEvent;
use domain::subscription::SubscriptionStatus;
use futures::future::join_all;

use crate::support::{assert_conflict, assert_not_found, eventually, id_of, start, Fixture};

const LINKED: &str = "Payment method is linked to an active subscription";

#[tokio::test]
async fn a_customer_has_one_live_subscription_at_a_time() {
    let f = Fixture::new().await;
    let customer = f.customer("one@example.com").await;
    let plan = f.plan().await;
    let first = f.start(&customer, &plan, None).await.unwrap();
    // No card to charge its first invoice: past due, still the customer's.
    assert_eq!(first.status, Some(SubscriptionStatus::PastDue));
    assert!(first.is_active());

    assert_conflict(f.start(&customer, &plan, None).await, ALREADY_SUBSCRIBED);
    assert_eq!(
        f.live_subscription(&customer).await.map(|s| s.id),
        first.id,
        "the refused start left the first one alone"
    );

    // Once canceled, the customer may subscribe again.
    f.app
        .cancel_subscription(&f.metadata, id_of(&first).as_str())
        .await
        .unwrap();
    let second = f.start(&customer, &plan, None).await.unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(
        f.live_subscription(&customer).await.map(|s| s.id),
        second.id
    );
}

#[tokio::test]
async fn a_start_links_the_card_it_charges() {
    let f = Fixture::new().await;
    let customer = f.customer("link@example.com").await;
    let plan = f.plan().await;
    let card = f.card(&customer, "4242").await;
    assert_eq!(f.linked(&card).await, None);

    let subscription = f.start(&customer, &plan, Some(&card)).await.unwrap();
    assert_eq!(subscription.payment_method_id.as_ref(), Some(&card));
    assert_eq!(f.linked(&card).await, subscription.id);
    let live = f.live_subscription(&customer).await.unwrap();
    assert_eq!(live.payment_method_id.as_deref(), Some(card.as_str()));
}

#[tokio::test]
async fn a_start_with_another_customers_card_is_refused_and_links_nothing() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    let owner = f.customer("owner@example.com").await;
    let card = f.card(&owner, "4242").await;
    let other = f.customer("other@example.com").await;

    assert_not_found(
        f.start(&other, &plan, Some(&card)).await,
        "Payment method not found",
    );
    assert_eq!(f.linked(&card).await, None);
    assert!(f.live_subscription(&other).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_starts_exactly_one_wins_and_holds_the_card() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    for round in 0..4 {
        let customer = f.customer(&format!("race{round}@example.com")).await;
        let card = f.card(&customer, "4242").await;
        let starts = (0..6).map(|_| {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let (customer, plan, card) = (customer.clone(), plan.clone(), card.clone());
            tokio::spawn(async move { start(&app, &metadata, &customer, &plan, Some(&card)).await })
        });
        let results: Vec<_> = join_all(starts)
            .await
            .into_iter()
            .map(|joined| joined.expect("the start ran"))
            .collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for result in results.iter().filter(|r| r.is_err()) {
            assert_conflict(result.clone(), ALREADY_SUBSCRIBED);
        }
        let winner = id_of(winners[0]);
        assert_eq!(
            f.linked(&card).await.as_ref(),
            Some(&winner),
            "round {round}"
        );
        let live = f.live_subscription(&customer).await.unwrap();
        assert_eq!(live.id, winner, "round {round}");
        assert_eq!(live.payment_method_id.as_deref(), Some(card.as_str()));
    }
}

/// A second start refused while the first is live (with another card, or the same) leaves
/// each card as it was: the first's linked to it, the other free.
#[tokio::test]
async fn a_refused_start_leaves_the_cards_as_they_were() {
    let f = Fixture::new().await;
    let customer = f.customer("refused@example.com").await;
    let plan = f.plan().await;
    let first_card = f.card(&customer, "4242").await;
    let winner = f.start(&customer, &plan, Some(&first_card)).await.unwrap();
    let other_card = f.card(&customer, "5555").await;
    // Adding a card moved the subscription to it (the default is the newest).
    assert_eq!(f.linked(&other_card).await, winner.id);

    assert_conflict(
        f.start(&customer, &plan, Some(&first_card)).await,
        ALREADY_SUBSCRIBED,
    );
    assert_conflict(
        f.start(&customer, &plan, Some(&other_card)).await,
        ALREADY_SUBSCRIBED,
    );
    assert_eq!(f.linked(&other_card).await, winner.id);
    assert_eq!(f.linked(&first_card).await, None);
}

/// Another writer's start of the customer (another process that skipped the customer's turn,
/// simulated by a row of `subscription_list` written in an open transaction) commits between
/// the start's check and its append: the start's append runs into the live-subscription claim
/// and fails, and the link it made is handed to the winner, which charges the same card.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_loses_the_claim_hands_its_link_to_the_winner() {
    let f = Fixture::new().await;
    let customer = f.customer("claim@example.com").await;
    let plan = f.plan().await;
    let card = f.card(&customer, "4242").await;
    let rival = SubscriptionId::generate();

    let outcome = start_against_rival(&f, &customer, &plan, &card, &rival, true).await;
    assert_conflict(outcome, ALREADY_SUBSCRIBED);
    assert_eq!(
        f.linked(&card).await.as_ref(),
        Some(&rival),
        "the card is the winner's"
    );
    // The start did link the card before it failed: the compensation ran.
    let links = link_history(&f, &card).await;
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[1], rival.as_str());
    assert_ne!(links[0], rival.as_str());
    assert!(f
        .subscription(&SubscriptionId::parse(&links[0]).unwrap())
        .await
        .id
        .is_none());
}

/// As above, but the winner charges no card: the start's link is taken back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_loses_the_claim_takes_its_link_back() {
    let f = Fixture::new().await;
    let customer = f.customer("claim2@example.com").await;
    let plan = f.plan().await;
    let card = f.card(&customer, "4242").await;
    let rival = SubscriptionId::generate();

    let outcome = start_against_rival(&f, &customer, &plan, &card, &rival, false).await;
    assert_conflict(outcome, ALREADY_SUBSCRIBED);
    assert_eq!(f.linked(&card).await, None);
    assert_eq!(link_history(&f, &card).await.len(), 1, "linked once");
    // So the card can be removed.
    f.app
        .remove_payment_method(&f.metadata, card.as_str())
        .await
        .unwrap();
}

/// Starts a subscription of `customer` on `card` while an uncommitted rival row holds the
/// customer's live-subscription slot; commits the rival once the start's append waits on it.
async fn start_against_rival(
    f: &Fixture,
    customer: &domain::id::CustomerId,
    plan: &domain::id::PlanId,
    card: &domain::id::PaymentMethodId,
    rival: &SubscriptionId,
    rival_charges_the_card: bool,
) -> Result<domain::subscription::Subscription, AppError> {
    let mut blocker = f.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO subscription_list (id, tenant, customer_id, plan_id, payment_method_id, \
         status, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'active', now(), now())",
    )
    .bind(rival.as_str())
    .bind(f.tenant().key())
    .bind(customer.as_str())
    .bind(plan.as_str())
    .bind(rival_charges_the_card.then(|| card.as_str()))
    .execute(&mut *blocker)
    .await
    .unwrap();

    let started = {
        let (app, metadata) = (f.app.clone(), f.metadata.clone());
        let (customer, plan, card) = (customer.clone(), plan.clone(), card.clone());
        tokio::spawn(async move { start(&app, &metadata, &customer, &plan, Some(&card)).await })
    };
    // The start checked, linked the card, and now waits on the rival's row.
    eventually("the start to link the card", || async {
        f.linked(card).await.is_some()
    })
    .await;
    let database = f.database.name.clone();
    eventually("the start's append to wait on the rival", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&database)
        .fetch_one(&f.pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
    assert!(!started.is_finished());
    blocker.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), started)
        .await
        .expect("the start finished")
        .expect("the start ran")
}

/// The subscriptions the payment method was linked to, in order.
async fn link_history(f: &Fixture, card: &domain::id::PaymentMethodId) -> Vec<String> {
    f.app
        .payment_methods
        .history(card.as_str())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|envelope| match envelope.payload {
            PaymentMethodEvent::PaymentMethodLinked {
                subscription_id, ..
            } => Some(subscription_id.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn cancel_unlinks_the_card_which_can_then_be_removed() {
    let f = Fixture::new().await;
    let customer = f.customer("cancel@example.com").await;
    let plan = f.plan().await;
    let card = f.card(&customer, "4242").await;
    let subscription = f.start(&customer, &plan, Some(&card)).await.unwrap();

    assert_conflict(
        f.app
            .remove_payment_method(&f.metadata, card.as_str())
            .await,
        LINKED,
    );
    assert!(!f.method(&card).await.is_removed());

    let canceled = f
        .app
        .cancel_subscription(&f.metadata, id_of(&subscription).as_str())
        .await
        .unwrap();
    assert_eq!(canceled.status, Some(SubscriptionStatus::Canceled));
    assert_eq!(f.linked(&card).await, None);
    assert!(f.live_subscription(&customer).await.is_none());

    f.app
        .remove_payment_method(&f.metadata, card.as_str())
        .await
        .unwrap();
    assert!(f.method(&card).await.is_removed());
    // A second cancel is refused and changes nothing.
    assert_conflict(
        f.app
            .cancel_subscription(&f.metadata, id_of(&subscription).as_str())
            .await,
        "Subscription is already canceled",
    );
}
