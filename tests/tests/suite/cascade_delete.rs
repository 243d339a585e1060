//! Deleting a customer who has an active subscription: refused with a 409, unless
//! `?cascade=true`, which cancels the subscription (unlinking its payment method) first and
//! records what it canceled in the customer's `SoftDeleted` event.

use billstream_tests::billing::Billing;
use billstream_tests::{assert_error, TestApp};
use serde_json::{json, Value};

const HAS_ACTIVE_SUBSCRIPTION: &str =
    "Customer has an active subscription. Cancel it first or delete with ?cascade=true";
const CUSTOMER_NOT_FOUND: &str = "Customer not found or access denied";

/// A customer on a plan with a card; returns (customer, subscription, card).
async fn subscribed_customer(app: &TestApp) -> (String, String, String) {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let customer = app.create_customer(json!({"email": email})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let card = Billing::new(app).card(&customer, "4242").await;
    let plan = json!({"name": "Pro", "currency": "USD", "pricingData": {"components": []}});
    let (status, plan) = app.post("/v1/plans", plan).await;
    assert_eq!(status, 201, "{plan}");
    let request = json!({
        "customerId": customer, "planId": plan["plan"]["id"], "paymentMethodId": card
    });
    let (status, subscription) = app.post("/v1/subscriptions", request).await;
    assert_eq!(status, 201, "{subscription}");
    let subscription = subscription["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (customer, subscription, card)
}

async fn subscription_status(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body["subscription"]["status"].clone()
}

async fn linked_subscription(app: &TestApp, payment_method_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT linked_subscription_id FROM payment_method_list WHERE id = $1")
        .bind(payment_method_id)
        .fetch_one(&app.pool)
        .await
        .expect("payment method row")
}

/// The customer's `SoftDeleted` event as the audit API shows it.
async fn soft_deleted(app: &TestApp, customer: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/customers/{customer}/events")).await;
    assert_eq!(status, 200, "{body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "SoftDeleted")
        .unwrap_or_else(|| panic!("no SoftDeleted event: {body}"))
        .clone()
}

/// The log's positions of the aggregate's events of `event_type`.
async fn positions(app: &TestApp, aggregate_id: &str, event_type: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT position FROM events WHERE aggregate_id = $1 AND event_type = $2 \
         ORDER BY position",
    )
    .bind(aggregate_id)
    .bind(event_type)
    .fetch_all(&app.pool)
    .await
    .expect("events")
}

#[tokio::test]
async fn deleting_a_customer_with_an_active_subscription_is_a_409_that_changes_nothing() {
    let app = TestApp::spawn().await;
    let (customer, subscription, card) = subscribed_customer(&app).await;
    for path in [
        format!("/v1/customers/{customer}"),
        format!("/v1/customers/{customer}?cascade=false"),
    ] {
        assert_error(&app.delete(&path).await, 409, HAS_ACTIVE_SUBSCRIPTION);
    }
    let (status, _) = app.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(status, 200, "the customer is still there");
    assert_eq!(subscription_status(&app, &subscription).await, "active");
    assert_eq!(
        linked_subscription(&app, &card).await.as_deref(),
        Some(subscription.as_str())
    );
}

#[tokio::test]
async fn cascade_cancels_the_subscription_unlinks_its_card_then_deletes() {
    let app = TestApp::spawn().await;
    let (customer, subscription, card) = subscribed_customer(&app).await;
    let (status, body) = app
        .delete(&format!("/v1/customers/{customer}?cascade=true"))
        .await;
    assert_eq!((status, body), (200, json!({"success": true})));

    assert_error(
        &app.get(&format!("/v1/customers/{customer}")).await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    assert_eq!(subscription_status(&app, &subscription).await, "canceled");
    assert_eq!(linked_subscription(&app, &card).await, None);

    let deleted = soft_deleted(&app, &customer).await;
    assert_eq!(
        deleted["data"]["canceledSubscriptions"],
        json!([subscription])
    );
    // In the order that keeps the card linked while anything charges it.
    let canceled = positions(&app, &subscription, "SubscriptionCanceled").await;
    let unlinked = positions(&app, &card, "PaymentMethodUnlinked").await;
    let deleted = positions(&app, &customer, "SoftDeleted").await;
    assert_eq!((canceled.len(), unlinked.len(), deleted.len()), (1, 1, 1));
    assert!(
        canceled[0] < unlinked[0] && unlinked[0] < deleted[0],
        "cancel {canceled:?}, unlink {unlinked:?}, delete {deleted:?}"
    );
}

#[tokio::test]
async fn a_subscription_canceled_before_does_not_block_the_delete_nor_count_as_cascaded() {
    let app = TestApp::spawn().await;
    let (customer, subscription, _) = subscribed_customer(&app).await;
    let (status, body) = app
        .post(
            &format!("/v1/subscriptions/{subscription}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = app.delete(&format!("/v1/customers/{customer}")).await;
    assert_eq!(status, 200, "{body}");
    let deleted = soft_deleted(&app, &customer).await;
    assert_eq!(deleted["data"]["canceledSubscriptions"], json!([]));
}

#[tokio::test]
async fn cascade_without_a_subscription_is_a_plain_delete() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "plain@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let (status, _) = app
        .delete(&format!("/v1/customers/{id}?cascade=true"))
        .await;
    assert_eq!(status, 200);
    let deleted = soft_deleted(&app, id).await;
    assert_eq!(deleted["data"]["canceledSubscriptions"], json!([]));
    assert_error(
        &app.delete(&format!("/v1/customers/{id}?cascade=true"))
            .await,
        404,
        CUSTOMER_NOT_FOUND,
    );
}

#[tokio::test]
async fn cascade_must_be_a_boolean() {
    let app = TestApp::spawn().await;
    let (customer, subscription, _) = subscribed_customer(&app).await;
    let (status, body) = app
        .delete(&format!("/v1/customers/{customer}?cascade=please"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(subscription_status(&app, &subscription).await, "active");
}

#[tokio::test]
async fn another_tenants_cascade_reaches_nothing() {
    let app = TestApp::spawn().await;
    let (customer, subscription, card) = subscribed_customer(&app).await;
    let other = app.other_merchant().await;
    let path = format!("/v1/customers/{customer}?cascade=true");
    for key in [other.test_secret_key.as_str(), app.live_key()] {
        assert_error(&app.delete_as(key, &path).await, 404, CUSTOMER_NOT_FOUND);
    }
    assert_eq!(subscription_status(&app, &subscription).await, "active");
    assert_eq!(
        linked_subscription(&app, &card).await.as_deref(),
        Some(subscription.as_str())
    );
}

#[tokio::test]
async fn a_deleted_customer_can_not_subscribe_again() {
    let app = TestApp::spawn().await;
    let (customer, _, _) = subscribed_customer(&app).await;
    app.delete(&format!("/v1/customers/{customer}?cascade=true"))
        .await;
    let plan = json!({"name": "Pro", "currency": "USD", "pricingData": {"components": []}});
    let (_, plan) = app.post("/v1/plans", plan).await;
    let response = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": plan["plan"]["id"]}),
        )
        .await;
    assert_error(&response, 404, CUSTOMER_NOT_FOUND);
}

/// A start and a delete of one customer, sent at once, many times over: they take turns, so
/// the customer is never left deleted with a live subscription nobody can reach.
#[tokio::test]
async fn a_start_racing_a_delete_never_leaves_a_deleted_customer_subscribed() {
    let app = TestApp::spawn().await;
    let (status, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD", "pricingData": {"components": []}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let plan_id = plan["plan"]["id"].as_str().unwrap().to_owned();
    for round in 0..12 {
        let customer = app
            .create_customer(json!({"email": format!("race{round}@example.com")}))
            .await;
        let id = customer["id"].as_str().unwrap().to_owned();
        let start = app.post(
            "/v1/subscriptions",
            json!({"customerId": id, "planId": plan_id}),
        );
        let path = format!("/v1/customers/{id}");
        let delete = app.delete(&path);
        let ((started, start_body), (deleted, delete_body)) = tokio::join!(start, delete);
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM subscription_list WHERE customer_id = $1 AND status <> 'canceled'",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        match (started, deleted) {
            // The start went first: the delete saw its subscription.
            (201, 409) => assert_eq!(live, 1, "round {round}"),
            // The delete went first: the start found no customer.
            (404, 200) => assert_eq!(live, 0, "round {round}"),
            other => panic!(
                "round {round}: {other:?} start {start_body} delete {delete_body} live {live}"
            ),
        }
    }
}

/// Twenty deletes at once, more than the app's pool has connections: each waits for its
/// customer's turn without holding a connection its own work needs, so all of them finish.
#[tokio::test]
async fn many_deletes_at_once_all_finish() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let customer = app
            .create_customer(json!({"email": format!("many{n}@example.com")}))
            .await;
        ids.push(customer["id"].as_str().unwrap().to_owned());
    }
    let started = std::time::Instant::now();
    let paths: Vec<String> = ids.iter().map(|id| format!("/v1/customers/{id}")).collect();
    let answers = futures::future::join_all(paths.iter().map(|path| app.delete(path))).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "deletes waited {:?} for connections",
        started.elapsed()
    );
}
