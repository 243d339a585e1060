//! A sandbox setup intent adds its one card once: a second confirm is refused, of racing
//! confirms one adds the card, and a declined card gives the intent back for another try.

use app::merchants::Provider;
use app::setup_intents::{CardInput, StartedSetup};
use app::AppError;
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::PaymentMethodCommand;
use futures::future::join_all;
use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::tables::sandbox_intents;

use crate::support::{acting_as, assert_conflict, assert_not_found, sandbox_card, Fixture};

const ALREADY_CONFIRMED: &str = "Setup intent has already been confirmed";

fn card(number: &str) -> CardInput {
    CardInput {
        number: Some(number.to_owned()),
        exp_month: Some(12),
        exp_year: Some(2030),
    }
}

/// A customer with external id `user_1`, and a sandbox intent for it.
async fn intent(f: &Fixture) -> (CustomerId, String) {
    let customer = f.external_customer("intent@example.com", "user_1").await;
    let started = f
        .app
        .create_setup_intent(&f.metadata, Some("user_1"))
        .await
        .unwrap();
    let StartedSetup::Sandbox { intent_id } = started else {
        panic!("a sandbox merchant's intent is the sandbox's: {started:?}");
    };
    (customer.id, intent_id)
}

async fn cards_of(f: &Fixture, customer: &CustomerId) -> usize {
    PaymentMethodListProjection::for_customer(&f.pool, f.tenant(), customer)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn an_intent_is_confirmed_once() {
    let f = Fixture::new().await;
    let (customer, intent_id) = intent(&f).await;

    let method = f
        .app
        .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("4242424242424242"))
        .await
        .unwrap();
    assert_eq!(method.customer_id.as_ref(), Some(&customer));
    let added = method.card.expect("a card");
    assert_eq!(
        (added.last_four.as_str(), added.exp_month, added.exp_year),
        ("4242", 12, 2030)
    );

    assert_conflict(
        f.app
            .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("4242424242424242"))
            .await,
        ALREADY_CONFIRMED,
    );
    assert_conflict(
        f.app
            .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("5555555555554444"))
            .await,
        ALREADY_CONFIRMED,
    );
    assert_eq!(cards_of(&f, &customer).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_racing_confirms_one_adds_the_card() {
    let f = Fixture::new().await;
    let (customer, intent_id) = intent(&f).await;
    let confirms = (0..6).map(|_| {
        let (app, metadata, intent_id) = (f.app.clone(), f.metadata.clone(), intent_id.clone());
        tokio::spawn(async move {
            app.confirm_sandbox_setup_intent(&metadata, &intent_id, card("4242424242424242"))
                .await
        })
    });
    let results: Vec<_> = join_all(confirms)
        .await
        .into_iter()
        .map(|joined| joined.expect("the confirm ran"))
        .collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for result in results.iter().filter(|r| r.is_err()) {
        assert_conflict(result.clone(), ALREADY_CONFIRMED);
    }
    assert_eq!(cards_of(&f, &customer).await, 1);
}

#[tokio::test]
async fn a_declined_card_gives_the_intent_back() {
    let f = Fixture::new().await;
    let (customer, intent_id) = intent(&f).await;

    let declined = f
        .app
        .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("4000000000000002"))
        .await;
    match declined {
        Err(AppError::PaymentFailed { code, message }) => {
            assert_eq!(code, "card_declined");
            assert_eq!(message, "Your card was declined");
        }
        other => panic!("expected PaymentFailed, got {other:?}"),
    }
    assert_eq!(cards_of(&f, &customer).await, 0);

    f.app
        .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("4242424242424242"))
        .await
        .unwrap();
    assert_eq!(cards_of(&f, &customer).await, 1);
}

#[tokio::test]
async fn confirming_adds_the_default_card_and_moves_the_subscription() {
    let f = Fixture::new().await;
    let (customer, intent_id) = intent(&f).await;
    let plan = f.plan().await;
    let old = f.card(&customer, "1111").await;
    let subscription = f.start(&customer, &plan, Some(&old)).await.unwrap();

    let method = f
        .app
        .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("4242424242424242"))
        .await
        .unwrap();
    let new = method.id.clone().unwrap();
    assert_eq!(method.linked_subscription, subscription.id);
    assert_eq!(f.linked(&old).await, None);
    let live = f.live_subscription(&customer).await.unwrap();
    assert_eq!(live.payment_method_id.as_deref(), Some(new.as_str()));
}

#[tokio::test]
async fn another_customers_session_cannot_confirm_the_intent() {
    let f = Fixture::new().await;
    let (customer, intent_id) = intent(&f).await;
    f.external_customer("bob@example.com", "user_bob").await;
    let bobs = f.session("user_bob").await;
    assert_not_found(
        f.app
            .confirm_sandbox_setup_intent(&acting_as(&bobs), &intent_id, card("4242424242424242"))
            .await,
        "Setup intent not found",
    );
    // It is still the customer's to confirm.
    let own = f.session("user_1").await;
    f.app
        .confirm_sandbox_setup_intent(&acting_as(&own), &intent_id, card("4242424242424242"))
        .await
        .unwrap();
    assert_eq!(cards_of(&f, &customer).await, 1);
}

/// An earlier confirm added the card, then failed before the subscription moved to it and gave
/// the intent back (simulated: the intent's card added on its own): confirming again adds no
/// second card and finishes the move.
#[tokio::test]
async fn a_confirm_finishes_the_move_an_earlier_one_left_undone() {
    let f = Fixture::new().await;
    let (customer, intent_id) = intent(&f).await;
    let plan = f.plan().await;
    let old = f.card(&customer, "1111").await;
    let subscription = f.start(&customer, &plan, Some(&old)).await.unwrap();
    let intents_card = sandbox_intents::find(&f.pool, &intent_id)
        .await
        .unwrap()
        .unwrap()
        .payment_method_id;
    let intents_card = PaymentMethodId::parse(&intents_card).unwrap();
    f.app
        .payment_methods
        .execute_new(
            intents_card.as_str(),
            PaymentMethodCommand::AddPaymentMethod {
                id: intents_card.clone(),
                tenant: f.tenant().clone(),
                customer_id: customer.clone(),
                provider: Provider::Sandbox,
                payment_type: "card".into(),
                card: sandbox_card("4242").card,
                provider_reference: None,
            },
            &f.metadata,
        )
        .await
        .unwrap();
    assert_eq!(f.linked(&old).await, subscription.id, "not moved yet");

    let confirmed = f
        .app
        .confirm_sandbox_setup_intent(&f.metadata, &intent_id, card("4242424242424242"))
        .await;
    let method = confirmed.unwrap_or_else(|e| {
        panic!("the confirm should find its card added and finish the move, got {e:?}")
    });
    assert_eq!(method.id.as_ref(), Some(&intents_card));
    assert_eq!(method.linked_subscription, subscription.id);
    assert_eq!(f.linked(&old).await, None);
    let live = f.live_subscription(&customer).await.unwrap();
    assert_eq!(
        live.payment_method_id.as_deref(),
        Some(intents_card.as_str())
    );
    assert_eq!(
        cards_of(&f, &customer).await,
        2,
        "the old card and the intent's"
    );
}
