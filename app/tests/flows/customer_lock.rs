//! A customer's delete and its subscription's start take turns: a delete is refused while a
//! subscription is live (or, with `cascade`, cancels it and frees its card first), and a
//! start and a delete that race never leave a deleted customer with a live subscription.

use app::customers::HAS_ACTIVE_SUBSCRIPTION;
use app::AppError;
use domain::customer::CustomerEvent;
use domain::subscription::SubscriptionStatus;
use projections::read_models::customer_list::CustomerListProjection;

use crate::support::{assert_conflict, assert_not_found, id_of, start, Fixture};

#[tokio::test]
async fn a_delete_without_cascade_is_refused_while_a_subscription_is_live() {
    let f = Fixture::new().await;
    let customer = f.customer("live@example.com").await;
    let plan = f.plan().await;
    let card = f.card(&customer, "4242").await;
    let subscription = f.start(&customer, &plan, Some(&card)).await.unwrap();

    let refused = f
        .app
        .delete_customer(&f.metadata, customer.as_str(), false)
        .await;
    match &refused {
        Err(AppError::Conflict { message, .. }) if message.contains("Cancel it first") => {}
        other => panic!("expected a conflict naming the cancel, got {other:?}"),
    }
    assert_conflict(refused, HAS_ACTIVE_SUBSCRIPTION);

    assert!(
        CustomerListProjection::get(&f.pool, f.tenant(), customer.as_str())
            .await
            .unwrap()
            .is_some(),
        "the customer is still there"
    );
    assert_eq!(
        f.live_subscription(&customer).await.map(|s| s.id),
        subscription.id
    );
    assert_eq!(f.linked(&card).await, subscription.id);
}

#[tokio::test]
async fn a_cascade_cancels_the_subscription_frees_its_card_and_deletes() {
    let f = Fixture::new().await;
    let customer = f.customer("cascade@example.com").await;
    let plan = f.plan().await;
    let card = f.card(&customer, "4242").await;
    let subscription = id_of(&f.start(&customer, &plan, Some(&card)).await.unwrap());

    f.app
        .delete_customer(&f.metadata, customer.as_str(), true)
        .await
        .unwrap();

    let canceled = f.subscription(&subscription).await;
    assert_eq!(canceled.status, Some(SubscriptionStatus::Canceled));
    assert!(canceled.canceled_at.is_some());
    assert!(f.live_subscription(&customer).await.is_none());
    assert_eq!(f.linked(&card).await, None, "the card was unlinked");
    assert!(
        CustomerListProjection::get(&f.pool, f.tenant(), customer.as_str())
            .await
            .unwrap()
            .is_none(),
        "the customer is deleted"
    );
    // The delete records what it canceled.
    let history = f.app.customers.history(customer.as_str()).await.unwrap();
    match &history.last().unwrap().payload {
        CustomerEvent::SoftDeleted {
            canceled_subscriptions,
            ..
        } => assert_eq!(canceled_subscriptions, &vec![subscription.clone()]),
        other => panic!("expected the delete last, got {other:?}"),
    }
    // A deleted customer cannot subscribe again.
    assert_not_found(
        f.start(&customer, &plan, None).await,
        app::customers::NOT_FOUND,
    );
}

#[tokio::test]
async fn a_cascade_without_a_subscription_is_a_plain_delete() {
    let f = Fixture::new().await;
    let customer = f.customer("plain@example.com").await;
    let plan = f.plan().await;
    let earlier = f.start(&customer, &plan, None).await.unwrap();
    f.app
        .cancel_subscription(&f.metadata, id_of(&earlier).as_str())
        .await
        .unwrap();

    f.app
        .delete_customer(&f.metadata, customer.as_str(), true)
        .await
        .unwrap();
    let history = f.app.customers.history(customer.as_str()).await.unwrap();
    match &history.last().unwrap().payload {
        CustomerEvent::SoftDeleted {
            canceled_subscriptions,
            ..
        } => assert!(
            canceled_subscriptions.is_empty(),
            "{canceled_subscriptions:?}"
        ),
        other => panic!("expected the delete last, got {other:?}"),
    }
}

/// A start and a delete of one customer, spawned together, round after round: whichever goes
/// first, the other sees it, and a deleted customer never keeps a live subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_racing_a_delete_never_leaves_a_deleted_customer_subscribed() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    let mut outcomes = [0; 2];
    for round in 0..12 {
        let customer = f.customer(&format!("race{round}@example.com")).await;
        let started = {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let (customer, plan) = (customer.clone(), plan.clone());
            tokio::spawn(async move { start(&app, &metadata, &customer, &plan, None).await })
        };
        let deleted = {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let customer = customer.clone();
            tokio::spawn(async move {
                app.delete_customer(&metadata, customer.as_str(), false)
                    .await
            })
        };
        let (started, deleted) = (started.await.unwrap(), deleted.await.unwrap());

        let live = f.live_subscription(&customer).await;
        let exists = CustomerListProjection::get(&f.pool, f.tenant(), customer.as_str())
            .await
            .unwrap()
            .is_some();
        assert!(
            exists || live.is_none(),
            "round {round}: a deleted customer kept {live:?} (start {started:?}, delete {deleted:?})"
        );
        match (&started, &deleted) {
            // The start went first: the delete saw its subscription.
            (Ok(subscription), Err(AppError::Conflict { message, .. })) => {
                assert_eq!(message, HAS_ACTIVE_SUBSCRIPTION, "round {round}");
                assert!(exists, "round {round}");
                assert_eq!(live.map(|l| l.id), subscription.id, "round {round}");
                outcomes[0] += 1;
            }
            // The delete went first: the start found no customer.
            (Err(AppError::NotFound(_)), Ok(())) => {
                assert!(!exists && live.is_none(), "round {round}");
                outcomes[1] += 1;
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    eprintln!("start first {}, delete first {}", outcomes[0], outcomes[1]);
}

/// The same race with `cascade`: a start that went first is canceled by the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_racing_a_cascade_delete_never_leaves_a_deleted_customer_subscribed() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    for round in 0..12 {
        let customer = f.customer(&format!("cascade{round}@example.com")).await;
        let card = f.card(&customer, "4242").await;
        let started = {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let (customer, plan, card) = (customer.clone(), plan.clone(), card.clone());
            tokio::spawn(async move { start(&app, &metadata, &customer, &plan, Some(&card)).await })
        };
        let deleted = {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let customer = customer.clone();
            tokio::spawn(async move {
                app.delete_customer(&metadata, customer.as_str(), true)
                    .await
            })
        };
        let (started, deleted) = (started.await.unwrap(), deleted.await.unwrap());
        assert!(deleted.is_ok(), "round {round}: {deleted:?}");
        assert!(
            matches!(started, Ok(_) | Err(AppError::NotFound(_))),
            "round {round}: {started:?}"
        );
        assert!(
            f.live_subscription(&customer).await.is_none(),
            "round {round}"
        );
        assert!(
            CustomerListProjection::get(&f.pool, f.tenant(), customer.as_str())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            f.linked(&card).await,
            None,
            "round {round}: card left linked"
        );
    }
}
