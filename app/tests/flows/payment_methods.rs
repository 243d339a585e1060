//! Payment methods: the customer's default is its newest, so adding one moves the live
//! subscription to it and frees the one before; a subscription can be moved explicitly; and a
//! provider's payment method is added once, also when two adds race.

use app::merchants::Provider;
use app::payment_methods::{Added, CollectedPaymentMethod, NOT_FOUND, NO_ACTIVE_SUBSCRIPTION};
use domain::id::PaymentMethodId;
use domain::payment_method::Card;
use projections::read_models::payment_method_list::PaymentMethodListProjection;

use crate::support::{assert_conflict, assert_not_found, id_of, sandbox_card, Fixture};

fn stripe_card(reference: &str) -> CollectedPaymentMethod {
    CollectedPaymentMethod {
        provider: Provider::Stripe,
        payment_type: "card".into(),
        card: Some(Card {
            brand: "visa".into(),
            last_four: "4242".into(),
            exp_month: 11,
            exp_year: 2031,
        }),
        provider_reference: Some(reference.to_owned()),
    }
}

#[tokio::test]
async fn a_new_card_becomes_the_default_and_takes_over_the_subscription() {
    let f = Fixture::new().await;
    let customer = f.customer("default@example.com").await;
    let plan = f.plan().await;
    let first = f.card(&customer, "4242").await;
    let subscription = id_of(&f.start(&customer, &plan, Some(&first)).await.unwrap());

    let second = PaymentMethodId::generate();
    let added = f
        .app
        .add_collected_payment_method(&f.metadata, &customer, second.clone(), sandbox_card("5555"))
        .await
        .unwrap();
    match added {
        Added::New(method) => {
            assert_eq!(method.id.as_ref(), Some(&second));
            assert_eq!(method.linked_subscription.as_ref(), Some(&subscription));
        }
        other => panic!("expected a new method, got {other:?}"),
    }
    assert_eq!(
        f.subscription(&subscription).await.payment_method_id,
        Some(second.clone())
    );
    let live = f.live_subscription(&customer).await.unwrap();
    assert_eq!(live.payment_method_id.as_deref(), Some(second.as_str()));
    assert_eq!(f.linked(&second).await.as_ref(), Some(&subscription));
    assert_eq!(f.linked(&first).await, None, "the old card was freed");

    // So the old card can go, and the new one cannot.
    f.app
        .remove_payment_method(&f.metadata, first.as_str())
        .await
        .unwrap();
    assert_conflict(
        f.app
            .remove_payment_method(&f.metadata, second.as_str())
            .await,
        "Payment method is linked to an active subscription",
    );
}

#[tokio::test]
async fn a_subscription_moves_to_the_card_asked_for() {
    let f = Fixture::new().await;
    let customer = f.customer("move@example.com").await;
    let plan = f.plan().await;
    let first = f.card(&customer, "4242").await;
    let second = f.card(&customer, "5555").await;
    let subscription = id_of(&f.start(&customer, &plan, Some(&second)).await.unwrap());

    f.app
        .set_subscription_payment_method(&f.metadata, &customer, Some(first.as_str()))
        .await
        .unwrap();
    assert_eq!(
        f.subscription(&subscription).await.payment_method_id,
        Some(first.clone())
    );
    assert_eq!(f.linked(&first).await.as_ref(), Some(&subscription));
    assert_eq!(f.linked(&second).await, None);
    let live = f.live_subscription(&customer).await.unwrap();
    assert_eq!(live.payment_method_id.as_deref(), Some(first.as_str()));

    // Moving to the card it already charges changes nothing.
    f.app
        .set_subscription_payment_method(&f.metadata, &customer, Some(first.as_str()))
        .await
        .unwrap();
    assert_eq!(f.linked(&first).await.as_ref(), Some(&subscription));

    // Another customer's card is not the customer's to choose.
    let stranger = f.customer("stranger@example.com").await;
    let strangers_card = f.card(&stranger, "1111").await;
    assert_not_found(
        f.app
            .set_subscription_payment_method(&f.metadata, &customer, Some(strangers_card.as_str()))
            .await,
        NOT_FOUND,
    );
    assert_eq!(f.linked(&strangers_card).await, None);
    assert_eq!(f.linked(&first).await.as_ref(), Some(&subscription));
}

#[tokio::test]
async fn moving_needs_a_live_subscription() {
    let f = Fixture::new().await;
    let customer = f.customer("none@example.com").await;
    let card = f.card(&customer, "4242").await;
    assert_conflict(
        f.app
            .set_subscription_payment_method(&f.metadata, &customer, Some(card.as_str()))
            .await,
        NO_ACTIVE_SUBSCRIPTION,
    );
    assert_eq!(f.linked(&card).await, None);
}

#[tokio::test]
async fn a_provider_payment_method_is_added_once() {
    let f = Fixture::new().await;
    let customer = f.customer("once@example.com").await;
    let first = PaymentMethodId::generate();
    let added = f
        .app
        .add_collected_payment_method(&f.metadata, &customer, first.clone(), stripe_card("pm_x"))
        .await
        .unwrap();
    assert!(matches!(added, Added::New(_)), "{added:?}");
    let again = f
        .app
        .add_collected_payment_method(
            &f.metadata,
            &customer,
            PaymentMethodId::generate(),
            stripe_card("pm_x"),
        )
        .await
        .unwrap();
    match again {
        Added::AlreadyAdded(existing) => assert_eq!(existing, first),
        other => panic!("expected AlreadyAdded, got {other:?}"),
    }
    let methods = PaymentMethodListProjection::for_customer(&f.pool, f.tenant(), &customer)
        .await
        .unwrap();
    assert_eq!(methods.len(), 1, "{methods:?}");
}

/// "The provider's payment method, or this id, was added before: nothing changed": adding an
/// id again (a sandbox intent's card, whose id is fixed when the intent is made) is
/// `AlreadyAdded`, and still makes it the default.
#[tokio::test]
async fn an_id_added_again_is_already_added() {
    let f = Fixture::new().await;
    let customer = f.customer("again@example.com").await;
    let id = f.card(&customer, "4242").await;
    let again = f
        .app
        .add_collected_payment_method(&f.metadata, &customer, id.clone(), sandbox_card("4242"))
        .await;
    match again {
        Ok(Added::AlreadyAdded(existing)) => assert_eq!(existing, id),
        other => panic!("expected AlreadyAdded({id:?}), got {other:?}"),
    }
    let methods = PaymentMethodListProjection::for_customer(&f.pool, f.tenant(), &customer)
        .await
        .unwrap();
    assert_eq!(methods.len(), 1, "{methods:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_racing_adds_of_one_provider_payment_method_one_adds_it() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    for round in 0..6 {
        let customer = f.customer(&format!("race{round}@example.com")).await;
        // With a live subscription, so the winner's move runs too.
        let subscription = id_of(&f.start(&customer, &plan, None).await.unwrap());
        let reference = format!("pm_race_{round}");
        let adds = (0..4).map(|_| {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let (customer, collected) = (customer.clone(), stripe_card(&reference));
            tokio::spawn(async move {
                app.add_collected_payment_method(
                    &metadata,
                    &customer,
                    PaymentMethodId::generate(),
                    collected,
                )
                .await
            })
        });
        let mut added = Vec::new();
        let mut already = Vec::new();
        for add in adds {
            match add.await.unwrap() {
                Ok(Added::New(method)) => added.push(method.id.unwrap()),
                Ok(Added::AlreadyAdded(id)) => already.push(id),
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(added.len(), 1, "round {round}: {added:?} {already:?}");
        assert!(
            already.iter().all(|id| *id == added[0]),
            "round {round}: each later add names the winner: {already:?} vs {added:?}"
        );
        let methods = PaymentMethodListProjection::for_customer(&f.pool, f.tenant(), &customer)
            .await
            .unwrap();
        assert_eq!(methods.len(), 1, "round {round}: {methods:?}");
        assert_eq!(f.linked(&added[0]).await.as_ref(), Some(&subscription));
        let events: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'PaymentMethod' \
             AND event_type = 'PaymentMethodAdded' AND payload::text LIKE $1",
        )
        .bind(format!("%\"{reference}\"%"))
        .fetch_one(&f.pool)
        .await
        .unwrap();
        assert_eq!(
            events, 1,
            "round {round}: one PaymentMethodAdded in the log"
        );
    }
}

/// A cancel racing a move of the subscription to another card: whichever goes first, no card
/// stays linked to the canceled subscription.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_racing_a_cancel_leaves_no_card_linked() {
    let f = Fixture::new().await;
    let plan = f.plan().await;
    // Moved first; canceled before the move looked; canceled between the link and the move.
    let mut outcomes = [0; 3];
    for round in 0..12 {
        let customer = f.customer(&format!("race{round}@example.com")).await;
        let first = f.card(&customer, "4242").await;
        let second = f.card(&customer, "5555").await;
        let subscription = id_of(&f.start(&customer, &plan, Some(&first)).await.unwrap());
        let moved = {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let (customer, second) = (customer.clone(), second.clone());
            tokio::spawn(async move {
                app.set_subscription_payment_method(&metadata, &customer, Some(second.as_str()))
                    .await
            })
        };
        let canceled = {
            let (app, metadata) = (f.app.clone(), f.metadata.clone());
            let subscription = subscription.clone();
            // Later each round, so the cancel lands at each step of the move.
            let delay = std::time::Duration::from_micros(round * 600);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                app.cancel_subscription(&metadata, subscription.as_str())
                    .await
            })
        };
        let (moved, canceled) = (moved.await.unwrap(), canceled.await.unwrap());
        assert!(canceled.is_ok(), "round {round}: {canceled:?}");
        assert!(
            matches!(&moved, Ok(()) | Err(app::AppError::Conflict { .. })),
            "round {round}: {moved:?}"
        );
        match &moved {
            Ok(()) => outcomes[0] += 1,
            Err(e) if e.message() == NO_ACTIVE_SUBSCRIPTION => outcomes[1] += 1,
            Err(_) => outcomes[2] += 1,
        }
        assert_eq!(
            (f.linked(&first).await, f.linked(&second).await),
            (None, None),
            "round {round}: move {moved:?}"
        );
        for card in [&first, &second] {
            f.app
                .remove_payment_method(&f.metadata, card.as_str())
                .await
                .unwrap();
        }
    }
    eprintln!("moved, then canceled / canceled, then refused / refused mid-move: {outcomes:?}");
}
