//! Subscriptions: start, get and cancel over HTTP, the one-live-subscription rule (also under
//! concurrency), tenancy, and the payment method's link that follows the subscription.

use billstream_tests::billing::Billing;
use billstream_tests::{assert_error, send, timestamp, TestApp};
use chrono::Utc;
use domain::payment_method::PaymentMethodCommand;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

const CUSTOMER_NOT_FOUND: &str = "Customer not found or access denied";
const PLAN_NOT_FOUND: &str = "Plan not found";
const PAYMENT_METHOD_NOT_FOUND: &str = "Payment method not found";
const NOT_FOUND: &str = "Subscription not found";
const ALREADY_SUBSCRIBED: &str = "Customer already has an active subscription";

const SUBSCRIPTION_FIELDS: [&str; 18] = [
    "cancelAtPeriodEnd",
    "canceledAt",
    "currency",
    "currentPeriodEnd",
    "currentPeriodStart",
    "customerId",
    "gracePeriodEndsAt",
    "id",
    "latestInvoiceId",
    "paymentMethodId",
    "planId",
    "planName",
    "priceId",
    "pricingData",
    "quantity",
    "startTimestamp",
    "status",
    "trialEndsAt",
];

fn pricing() -> Value {
    json!({"components": [{"type": "flat", "amountCents": 2900}]})
}

/// A plan of the merchant `key` names; returns the plan's JSON.
async fn plan_as(app: &TestApp, key: &str) -> Value {
    let body = json!({"name": "Pro", "currency": "usd", "pricingData": pricing()});
    let (status, body) = app.post_as(key, "/v1/plans", body).await;
    assert_eq!(status, 201, "create plan: {body}");
    body["plan"].clone()
}

/// A customer of the merchant `key` names; returns its id.
async fn customer_as(app: &TestApp, key: &str) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = app
        .post_as(key, "/v1/customers", json!({"email": email}))
        .await;
    assert_eq!(status, 201, "create customer: {body}");
    body["customer"]["id"].as_str().unwrap().to_owned()
}

fn id_of(plan: &Value) -> &str {
    plan["id"].as_str().expect("id")
}

/// The subscription a payment method is linked to, as the `payment_method_list` read model
/// holds it.
async fn linked_subscription(app: &TestApp, payment_method_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT linked_subscription_id FROM payment_method_list WHERE id = $1")
        .bind(payment_method_id)
        .fetch_one(&app.pool)
        .await
        .expect("payment method row")
}

async fn live_subscriptions(app: &TestApp, customer_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT id FROM subscription_list WHERE customer_id = $1 AND status <> 'canceled'",
    )
    .bind(customer_id)
    .fetch_all(&app.pool)
    .await
    .expect("subscription rows")
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn start_answers_201_with_the_subscription_and_links_its_payment_method() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let card = Billing::new(&app).card(&customer, "4242").await;

    let request = json!({"customerId": customer, "planId": id_of(&plan), "paymentMethodId": card});
    let (status, body) = app.post("/v1/subscriptions", request).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(keys(&body), vec!["subscription"]);
    let subscription = &body["subscription"];
    assert_eq!(keys(subscription), SUBSCRIPTION_FIELDS.to_vec());
    let id = subscription["id"].as_str().unwrap();
    assert!(id.starts_with("sub_"), "{subscription}");
    assert_eq!(subscription["customerId"], customer.as_str());
    assert_eq!(subscription["planId"], plan["id"]);
    assert_eq!(subscription["priceId"], plan["priceId"]);
    assert_eq!(subscription["planName"], "Pro");
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["paymentMethodId"], card.as_str());
    assert_eq!(subscription["gracePeriodEndsAt"], Value::Null);
    assert_eq!(subscription["canceledAt"], Value::Null);
    assert_eq!(subscription["currency"], "USD");
    assert_eq!(subscription["pricingData"], pricing());
    let age = Utc::now() - timestamp(&subscription["startTimestamp"]);
    assert!(age.num_seconds().abs() < 60, "{subscription}");

    assert_eq!(linked_subscription(&app, &card).await.as_deref(), Some(id));
    let (status, fetched) = app.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(&fetched["subscription"], subscription);
}

#[tokio::test]
async fn a_payment_method_is_optional() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let (status, body) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": id_of(&plan)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subscription"]["paymentMethodId"], Value::Null);
    // Its first invoice has no card to charge: it starts past due, in its grace period.
    assert_eq!(body["subscription"]["status"], "past_due");
    assert!(
        body["subscription"]["gracePeriodEndsAt"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn missing_and_malformed_references_are_400() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let plan_id = id_of(&plan);
    assert_error(
        &app.post("/v1/subscriptions", json!({"planId": plan_id}))
            .await,
        400,
        "customerId is required",
    );
    assert_error(
        &app.post("/v1/subscriptions", json!({"customerId": customer}))
            .await,
        400,
        "planId is required",
    );
    for body in [
        json!({"customerId": "nope", "planId": plan_id}),
        json!({"customerId": customer, "planId": "price_1"}),
        json!({"customerId": customer, "planId": plan_id, "paymentMethodId": "card_1"}),
        json!({"customerId": 7, "planId": plan_id}),
        json!({"customerId": customer, "planId": plan_id, "trialDays": 7}),
    ] {
        let (status, error) = app.post("/v1/subscriptions", body.clone()).await;
        assert_eq!(status, 400, "{body} answered {error}");
        assert!(error["error"].is_string(), "{error}");
    }
    assert!(live_subscriptions(&app, &customer).await.is_empty());
}

#[tokio::test]
async fn unknown_deleted_or_other_merchants_customers_are_not_found() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let plan_id = id_of(&plan);
    let other = app.other_merchant().await;
    let theirs = customer_as(&app, &other.test_secret_key).await;
    let live_mode = customer_as(&app, app.live_key()).await;
    let deleted = customer_as(&app, app.test_key()).await;
    let (status, _) = app.delete(&format!("/v1/customers/{deleted}")).await;
    assert_eq!(status, 200);

    for customer in [
        "cust_doesnotexist".to_owned(),
        theirs.clone(),
        live_mode,
        deleted,
    ] {
        let response = app
            .post(
                "/v1/subscriptions",
                json!({"customerId": customer, "planId": plan_id}),
            )
            .await;
        assert_error(&response, 404, CUSTOMER_NOT_FOUND);
    }
    assert!(live_subscriptions(&app, &theirs).await.is_empty());
}

#[tokio::test]
async fn unknown_or_other_merchants_plans_are_not_found() {
    let app = TestApp::spawn().await;
    let customer = customer_as(&app, app.test_key()).await;
    let other = app.other_merchant().await;
    let theirs = plan_as(&app, &other.test_secret_key).await;
    let live_mode = plan_as(&app, app.live_key()).await;
    for plan_id in ["plan_doesnotexist", id_of(&theirs), id_of(&live_mode)] {
        let response = app
            .post(
                "/v1/subscriptions",
                json!({"customerId": customer, "planId": plan_id}),
            )
            .await;
        assert_error(&response, 404, PLAN_NOT_FOUND);
    }
}

#[tokio::test]
async fn the_payment_method_must_be_the_customers_own_and_not_removed() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let plan = plan_as(&app, app.test_key()).await;
    let plan_id = id_of(&plan);
    let customer = customer_as(&app, app.test_key()).await;
    let someone_else = customer_as(&app, app.test_key()).await;
    let their_card = billing.card(&someone_else, "1111").await;
    let removed = billing.card(&customer, "2222").await;
    billing
        .state
        .payment_methods
        .execute(
            &removed,
            PaymentMethodCommand::RemovePaymentMethod {
                tenant: billing.tenant.clone(),
            },
            &billing.metadata,
        )
        .await
        .expect("remove");

    for card in ["pm_doesnotexist", their_card.as_str(), removed.as_str()] {
        let request = json!({"customerId": customer, "planId": plan_id, "paymentMethodId": card});
        let response = app.post("/v1/subscriptions", request).await;
        assert_error(&response, 404, PAYMENT_METHOD_NOT_FOUND);
    }
    assert_eq!(linked_subscription(&app, &their_card).await, None);
    assert!(live_subscriptions(&app, &customer).await.is_empty());

    // Another merchant naming our card for its own customer finds nothing either.
    let other = app.other_merchant().await;
    let their_plan = plan_as(&app, &other.test_secret_key).await;
    let their_customer = customer_as(&app, &other.test_secret_key).await;
    let mine = billing.card(&customer, "3333").await;
    let request = json!({
        "customerId": their_customer, "planId": id_of(&their_plan), "paymentMethodId": mine
    });
    let response = app
        .post_as(&other.test_secret_key, "/v1/subscriptions", request)
        .await;
    assert_error(&response, 404, PAYMENT_METHOD_NOT_FOUND);
    assert_eq!(linked_subscription(&app, &mine).await, None);
}

#[tokio::test]
async fn a_second_live_subscription_is_409_and_leaves_the_first_and_its_card_alone() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let first_card = billing.card(&customer, "4242").await;
    let second_card = billing.card(&customer, "5555").await;
    let start = |card: &str| json!({"customerId": customer, "planId": id_of(&plan), "paymentMethodId": card});
    let (status, first) = app.post("/v1/subscriptions", start(&first_card)).await;
    assert_eq!(status, 201, "{first}");
    let first_id = first["subscription"]["id"].as_str().unwrap();

    for card in [&second_card, &first_card] {
        let response = app.post("/v1/subscriptions", start(card)).await;
        assert_error(&response, 409, ALREADY_SUBSCRIBED);
    }
    assert_eq!(live_subscriptions(&app, &customer).await, vec![first_id]);
    assert_eq!(
        linked_subscription(&app, &first_card).await.as_deref(),
        Some(first_id)
    );
    assert_eq!(linked_subscription(&app, &second_card).await, None);
}

#[tokio::test]
async fn of_ten_simultaneous_starts_for_one_customer_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    // One card for all: the losers must not leave it unlinked from the winner.
    let card = Billing::new(&app).card(&customer, "4242").await;
    let request = json!({"customerId": customer, "planId": id_of(&plan), "paymentMethodId": card});
    let responses = join_all((0..10).map(|_| {
        send(
            app.request(Method::POST, "/v1/subscriptions")
                .json(&request),
        )
    }))
    .await;

    let created: Vec<&Value> = responses
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(created.len(), 1, "{responses:?}");
    for response in responses.iter().filter(|(status, _)| *status != 201) {
        assert_error(response, 409, ALREADY_SUBSCRIBED);
    }
    let winner = created[0]["subscription"]["id"].as_str().unwrap();
    assert_eq!(live_subscriptions(&app, &customer).await, vec![winner]);
    assert_eq!(
        linked_subscription(&app, &card).await.as_deref(),
        Some(winner)
    );
}

#[tokio::test]
async fn get_answers_only_the_tenants_subscriptions() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let (_, created) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": id_of(&plan)}),
        )
        .await;
    let path = format!(
        "/v1/subscriptions/{}",
        created["subscription"]["id"].as_str().unwrap()
    );
    let other = app.other_merchant().await;
    assert_error(
        &app.get_as(&other.test_secret_key, &path).await,
        404,
        NOT_FOUND,
    );
    assert_error(&app.get_as(app.live_key(), &path).await, 404, NOT_FOUND);
    assert_error(
        &app.get("/v1/subscriptions/sub_doesnotexist").await,
        404,
        NOT_FOUND,
    );
    let (status, body) = app.get("/v1/subscriptions/cust_1").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, _) = app.get(&path).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cancel_answers_the_canceled_subscription_and_unlinks_its_card() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let card = Billing::new(&app).card(&customer, "4242").await;
    let request = json!({"customerId": customer, "planId": id_of(&plan), "paymentMethodId": card});
    let (_, created) = app.post("/v1/subscriptions", request).await;
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    let cancel = format!("/v1/subscriptions/{id}/cancel");

    let (status, body) = app.post(&cancel, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let subscription = &body["subscription"];
    assert_eq!(keys(subscription), SUBSCRIPTION_FIELDS.to_vec());
    assert_eq!(subscription["status"], "canceled");
    assert_eq!(subscription["paymentMethodId"], card.as_str());
    let canceled_at = timestamp(&subscription["canceledAt"]);
    assert!(canceled_at >= timestamp(&subscription["startTimestamp"]));
    assert_eq!(linked_subscription(&app, &card).await, None);
    assert!(live_subscriptions(&app, &customer).await.is_empty());
    let (_, fetched) = app.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(&fetched["subscription"], subscription);

    assert_error(
        &app.post(&cancel, json!({})).await,
        409,
        "Subscription is already canceled",
    );

    // The customer may subscribe again, with the same card.
    let request = json!({"customerId": customer, "planId": id_of(&plan), "paymentMethodId": card});
    let (status, again) = app.post("/v1/subscriptions", request).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(
        linked_subscription(&app, &card).await.as_deref(),
        again["subscription"]["id"].as_str()
    );
}

#[tokio::test]
async fn cancel_of_a_subscription_that_is_not_the_tenants_is_not_found() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let (_, created) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer, "planId": id_of(&plan)}),
        )
        .await;
    let id = created["subscription"]["id"].as_str().unwrap();
    let cancel = format!("/v1/subscriptions/{id}/cancel");
    let other = app.other_merchant().await;
    assert_error(
        &app.post_as(&other.test_secret_key, &cancel, json!({}))
            .await,
        404,
        NOT_FOUND,
    );
    assert_error(
        &app.post_as(app.live_key(), &cancel, json!({})).await,
        404,
        NOT_FOUND,
    );
    assert_error(
        &app.post("/v1/subscriptions/sub_doesnotexist/cancel", json!({}))
            .await,
        404,
        NOT_FOUND,
    );
    let (status, _) = app.post("/v1/subscriptions/nope/cancel", json!({})).await;
    assert_eq!(status, 400);
    let (_, fetched) = app.get(&format!("/v1/subscriptions/{id}")).await;
    // Started without a card it is past due; none of the refused cancels ended it.
    assert_eq!(fetched["subscription"]["status"], "past_due");
}

#[tokio::test]
async fn a_retried_start_with_the_same_idempotency_key_answers_the_first_subscription() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let request = json!({"customerId": customer, "planId": id_of(&plan)});
    let start = || {
        send(
            app.request(Method::POST, "/v1/subscriptions")
                .header("Idempotency-Key", "subscribe-once")
                .json(&request),
        )
    };
    let first = start().await;
    let second = start().await;
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!(second, first, "the retry replays, it does not 409");
    assert_eq!(live_subscriptions(&app, &customer).await.len(), 1);
}

#[tokio::test]
async fn a_cancel_validates_its_body_like_every_post() {
    let app = TestApp::spawn().await;
    let plan = plan_as(&app, app.test_key()).await;
    let customer = customer_as(&app, app.test_key()).await;
    let request = json!({"customerId": customer, "planId": id_of(&plan)});
    let (_, created) = app.post("/v1/subscriptions", request).await;
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    let cancel = format!("/v1/subscriptions/{id}/cancel");
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    for (body, status) in [
        ("{".to_owned(), 400),
        ("{\"reason\": \"unknown field\"}".to_owned(), 400),
        (big, 413),
    ] {
        let response = billstream_tests::send_raw(
            app.request(Method::POST, &cancel)
                .header("content-type", "application/json")
                .body(body.clone()),
        )
        .await;
        assert_eq!(response.status, status, "{}", response.text);
        assert!(response.json()["error"].is_string(), "{}", response.text);
    }
    assert_eq!(
        live_subscriptions(&app, &customer).await.len(),
        1,
        "nothing was canceled"
    );
    // No body at all, or `{}`, cancels.
    let response = billstream_tests::send_raw(app.request(Method::POST, &cancel)).await;
    assert_eq!(response.status, 200, "{}", response.text);
}
