//! Which customer a portal request reaches: a portal session its own customer only (anything
//! else is "not found", like another tenant's), a secret key the one `externalCustomerId`
//! names, which it must send.

use app::AppError;

use crate::support::{acting_as, assert_not_found, Fixture};

const CUSTOMER_NOT_FOUND: &str = "Customer not found or access denied";

#[tokio::test]
async fn a_session_reaches_its_own_customer_only() {
    let f = Fixture::new().await;
    let alice = f.external_customer("alice@example.com", "user_alice").await;
    let bob = f.external_customer("bob@example.com", "user_bob").await;
    let session = f.session("user_alice").await;

    let own = f.app.portal_customer(&session, None).await.unwrap();
    assert_eq!(own.id, alice.id);
    let named = f
        .app
        .portal_customer(&session, Some("user_alice"))
        .await
        .unwrap();
    assert_eq!(named.id, alice.id);
    assert_not_found(
        f.app.portal_customer(&session, Some("user_bob")).await,
        CUSTOMER_NOT_FOUND,
    );
    assert_not_found(
        f.app.subscription_status(&session, Some("user_bob")).await,
        CUSTOMER_NOT_FOUND,
    );
    assert_not_found(
        f.app
            .create_setup_intent(&acting_as(&session), Some("user_bob"))
            .await,
        CUSTOMER_NOT_FOUND,
    );

    // The secret key reaches either, by external id.
    let by_key = f
        .app
        .portal_customer(f.principal(), Some("user_bob"))
        .await
        .unwrap();
    assert_eq!(by_key.id, bob.id);
}

#[tokio::test]
async fn a_secret_key_must_name_the_customer() {
    let f = Fixture::new().await;
    f.external_customer("alice@example.com", "user_alice").await;
    for missing in [None, Some(""), Some("   ")] {
        match f.app.portal_customer(f.principal(), missing).await {
            Err(AppError::Invalid { code, message }) => {
                assert_eq!(code, "invalid_request");
                assert_eq!(message, "externalCustomerId is required");
            }
            other => panic!("{missing:?}: expected Invalid, got {other:?}"),
        }
    }
    assert_not_found(
        f.app
            .portal_customer(f.principal(), Some("user_nobody"))
            .await,
        CUSTOMER_NOT_FOUND,
    );
}

#[tokio::test]
async fn a_session_of_a_deleted_customer_reaches_nothing() {
    let f = Fixture::new().await;
    let alice = f.external_customer("alice@example.com", "user_alice").await;
    let session = f.session("user_alice").await;
    f.app
        .delete_customer(&f.metadata, alice.id.as_str(), false)
        .await
        .unwrap();
    assert_not_found(
        f.app.portal_customer(&session, None).await,
        CUSTOMER_NOT_FOUND,
    );
}

#[tokio::test]
async fn a_session_reads_its_own_customers_organization_only() {
    let f = Fixture::new().await;
    let alice = f.external_customer("alice@example.com", "user_alice").await;
    f.external_customer("bob@example.com", "user_bob").await;
    f.app
        .create_organization(&f.metadata, Some("Acme".into()), Some(alice.id.as_str()))
        .await
        .unwrap();
    let alices = f.session("user_alice").await;
    let bobs = f.session("user_bob").await;

    let (organization, members) = f
        .app
        .organization_of_customer(&alices, alice.id.as_str())
        .await
        .unwrap();
    assert_eq!(organization.name, "Acme");
    assert_eq!(members.len(), 1);
    // The secret key reaches it too; Bob's session does not.
    f.app
        .organization_of_customer(f.principal(), alice.id.as_str())
        .await
        .unwrap();
    assert_not_found(
        f.app
            .organization_of_customer(&bobs, alice.id.as_str())
            .await,
        CUSTOMER_NOT_FOUND,
    );
}

#[tokio::test]
async fn a_session_removes_its_own_customers_cards_only() {
    let f = Fixture::new().await;
    let alice = f.external_customer("alice@example.com", "user_alice").await;
    f.external_customer("bob@example.com", "user_bob").await;
    let alice_id = alice.id.clone();
    let card = f.card(&alice_id, "4242").await;
    let bobs = f.session("user_bob").await;

    assert_not_found(
        f.app
            .remove_payment_method(&acting_as(&bobs), card.as_str())
            .await,
        "Payment method not found",
    );
    assert!(
        !f.method(&card).await.is_removed(),
        "Bob removed Alice's card"
    );

    let alices = f.session("user_alice").await;
    f.app
        .remove_payment_method(&acting_as(&alices), card.as_str())
        .await
        .unwrap();
    let removed = f.method(&card).await;
    assert!(removed.is_removed());
    // The event names the session that acted.
    let actor: String = sqlx::query_scalar(
        "SELECT metadata ->> 'actor' FROM events WHERE aggregate_id = $1 \
         AND event_type = 'PaymentMethodRemoved'",
    )
    .bind(card.as_str())
    .fetch_one(&f.pool)
    .await
    .unwrap();
    assert_eq!(actor, alices.key_id);
}
