//! The built-in sandbox provider: `create-setup-intent` answers an intent, and POSTing a card to
//! its `confirmUrl` with the portal's credentials adds the card, as the customer's default.

use billstream_tests::{assert_error, send, TestApp};
use serde_json::{json, Value};

const CUSTOMER_NOT_FOUND: &str = "Customer not found or access denied";
const INTENT_NOT_FOUND: &str = "Setup intent not found";
const DECLINED: &str = "Your card was declined";

const VISA: &str = "4242424242424242";

async fn customer(app: &TestApp, external_id: &str) -> String {
    let customer = app
        .create_customer(json!({
            "email": format!("{external_id}@example.com"),
            "name": "Jane",
            "externalCustomerId": external_id,
        }))
        .await;
    customer["id"].as_str().unwrap().to_owned()
}

async fn session(app: &TestApp, external_id: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": external_id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

/// A setup intent made with `key` (a secret key or a session token) and its confirm URL.
async fn intent_as(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let (status, body) = app
        .post_as(key, "/v1/customers/portal/create-setup-intent", body)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "sandbox", "{body}");
    let intent_id = body["sandbox"]["intentId"].as_str().unwrap().to_owned();
    let confirm_url = body["sandbox"]["confirmUrl"].as_str().unwrap().to_owned();
    (intent_id, confirm_url)
}

async fn intent(app: &TestApp, external_id: &str) -> (String, String) {
    intent_as(
        app,
        app.test_key(),
        json!({"externalCustomerId": external_id}),
    )
    .await
}

async fn confirm_as(app: &TestApp, key: &str, confirm_url: &str, card: Value) -> (u16, Value) {
    send(app.client.post(confirm_url).bearer_auth(key).json(&card)).await
}

async fn confirm(app: &TestApp, confirm_url: &str, card: Value) -> (u16, Value) {
    confirm_as(app, app.test_key(), confirm_url, card).await
}

fn card(number: &str) -> Value {
    json!({"cardNumber": number, "expMonth": 12, "expYear": 2030})
}

/// The customer's payment methods in the read model, removed or not: what was ever added.
async fn methods_added(app: &TestApp, customer_id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM payment_method_list WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn overview_methods(app: &TestApp, external_id: &str) -> Value {
    let (status, body) = app
        .get(&format!(
            "/v1/customers/portal/overview?externalCustomerId={external_id}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["portal"]["paymentMethods"].clone()
}

#[tokio::test]
async fn a_sandbox_card_is_added_through_a_setup_intent_and_shows_in_the_overview() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;

    let (status, body) = app
        .post(
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "user_1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let intent_id = body["sandbox"]["intentId"].as_str().unwrap();
    assert!(intent_id.starts_with("seti_"), "{body}");
    assert_eq!(
        body,
        json!({"provider": "sandbox", "sandbox": {
            "intentId": intent_id,
            "confirmUrl": app.url(&format!("/v1/customers/portal/setup-intents/{intent_id}/confirm")),
        }})
    );
    let confirm_url = body["sandbox"]["confirmUrl"].as_str().unwrap();

    let (status, body) = confirm(
        &app,
        confirm_url,
        json!({"cardNumber": "4242 4242 4242 4242", "expMonth": 3, "expYear": 2031}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let method = &body["paymentMethod"];
    let id = method["id"].as_str().unwrap();
    assert!(id.starts_with("pm_"), "{body}");
    assert_eq!(method["provider"], "sandbox");
    assert_eq!(method["paymentType"], "card");
    assert_eq!(method["status"], "active");
    assert_eq!(method["cardBrand"], "visa");
    assert_eq!(method["cardLastFour"], "4242");
    assert_eq!(method["cardExpiryMonth"], 3);
    assert_eq!(method["cardExpiryYear"], 2031);
    assert_eq!(method["linkedToSubscription"], false);

    assert_eq!(
        overview_methods(&app, "user_1").await,
        json!([{"id": id, "provider": "sandbox", "paymentType": "card", "status": "active",
            "cardBrand": "visa", "cardLastFour": "4242", "cardExpiryMonth": 3,
            "cardExpiryYear": 2031, "linkedToSubscription": false}])
    );
    assert_eq!(methods_added(&app, &customer_id).await, 1);
    // The number itself is kept nowhere.
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%4242424242424242%' \
         OR payload::text LIKE '%4242 4242%'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn the_brand_comes_from_the_number_and_a_two_digit_year_is_this_century() {
    let app = TestApp::spawn().await;
    customer(&app, "user_1").await;
    for (number, brand, last_four) in [
        ("5555555555554444", "mastercard", "4444"),
        ("378282246310005", "amex", "0005"),
        ("6011111111111117", "discover", "1117"),
    ] {
        let (_, url) = intent(&app, "user_1").await;
        let (status, body) = confirm(
            &app,
            &url,
            json!({"cardNumber": number, "expMonth": 1, "expYear": 40}),
        )
        .await;
        assert_eq!(status, 201, "{number}: {body}");
        assert_eq!(body["paymentMethod"]["cardBrand"], brand, "{number}");
        assert_eq!(body["paymentMethod"]["cardLastFour"], last_four, "{number}");
        assert_eq!(body["paymentMethod"]["cardExpiryYear"], 2040, "{number}");
    }
}

#[tokio::test]
async fn the_decline_card_is_a_402_and_adds_nothing_and_the_intent_stays_open() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    let (_, url) = intent(&app, "user_1").await;

    let response = confirm(&app, &url, card("4000000000000002")).await;
    assert_error(&response, 402, DECLINED);
    assert_eq!(response.1["code"], "card_declined");
    assert_error(
        &confirm(&app, &url, card("4000 0000 0000 0002")).await,
        402,
        DECLINED,
    );
    assert_eq!(methods_added(&app, &customer_id).await, 0);
    assert_eq!(overview_methods(&app, "user_1").await, json!([]));

    // A declined card does not use the intent up: another card completes it.
    let (status, body) = confirm(&app, &url, card(VISA)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(methods_added(&app, &customer_id).await, 1);
}

#[tokio::test]
async fn an_invalid_card_is_a_400_an_expired_one_a_402_and_neither_adds_anything() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    let (_, url) = intent(&app, "user_1").await;
    let number = "Your card number is invalid";
    let expiry = "Your card's expiration date is invalid";
    let cases = [
        (card("4242424242424241"), 400, number),
        (card("4242-4242-4242-4242"), 400, number),
        (card("42424242"), 400, number),
        (card("abcd"), 400, number),
        (
            json!({"cardNumber": VISA, "expMonth": 13, "expYear": 2030}),
            400,
            expiry,
        ),
        (
            json!({"cardNumber": VISA, "expMonth": 0, "expYear": 2030}),
            400,
            expiry,
        ),
        (
            json!({"cardNumber": VISA, "expMonth": -1, "expYear": 2030}),
            400,
            expiry,
        ),
        (
            json!({"cardNumber": VISA, "expMonth": 12, "expYear": 2300}),
            400,
            expiry,
        ),
        (
            json!({"cardNumber": VISA, "expMonth": 12, "expYear": -5}),
            400,
            expiry,
        ),
        (
            json!({"cardNumber": VISA, "expMonth": 12, "expYear": 99999999999i64}),
            400,
            expiry,
        ),
        (
            json!({"cardNumber": VISA, "expMonth": 1, "expYear": 2020}),
            402,
            "Your card has expired",
        ),
        (
            json!({"expMonth": 12, "expYear": 2030}),
            400,
            "cardNumber is required",
        ),
        (
            json!({"cardNumber": "  ", "expMonth": 12, "expYear": 2030}),
            400,
            "cardNumber is required",
        ),
        (
            json!({"cardNumber": VISA, "expYear": 2030}),
            400,
            "expMonth is required",
        ),
        (
            json!({"cardNumber": VISA, "expMonth": 12}),
            400,
            "expYear is required",
        ),
    ];
    for (body, status, message) in cases {
        let response = confirm(&app, &url, body.clone()).await;
        assert_error(&response, status, message);
    }
    // Wrong types and unknown fields are 400s with a JSON error too.
    for body in [
        json!({"cardNumber": VISA, "expMonth": "twelve", "expYear": 2030}),
        json!({"cardNumber": 4242424242424242u64, "expMonth": 12, "expYear": 2030}),
        json!({"cardNumber": VISA, "expMonth": 12, "expYear": 2030, "cvc": "123"}),
        json!([]),
    ] {
        let (status, response) = confirm(&app, &url, body.clone()).await;
        assert_eq!(status, 400, "{body}: {response}");
        assert!(response["error"].is_string(), "{body}: {response}");
    }
    let (status, response) = send(
        app.client
            .post(&url)
            .bearer_auth(app.test_key())
            .body("{not json"),
    )
    .await;
    assert_eq!(status, 400, "{response}");
    assert!(response["error"].is_string());

    assert_eq!(methods_added(&app, &customer_id).await, 0);
}

#[tokio::test]
async fn confirming_twice_is_a_409_and_adds_one_card() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    let (_, url) = intent(&app, "user_1").await;
    let (status, body) = confirm(&app, &url, card(VISA)).await;
    assert_eq!(status, 201, "{body}");
    assert_error(
        &confirm(&app, &url, card("5555555555554444")).await,
        409,
        "Setup intent has already been confirmed",
    );
    assert_eq!(methods_added(&app, &customer_id).await, 1);

    // Racing confirms of one intent: exactly one adds its card.
    let (_, url) = intent(&app, "user_1").await;
    let racers = (0..8).map(|_| confirm(&app, &url, card(VISA)));
    let statuses: Vec<u16> = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(methods_added(&app, &customer_id).await, 2);
}

#[tokio::test]
async fn a_session_makes_and_confirms_its_own_customers_intent_only() {
    let app = TestApp::spawn().await;
    let me = customer(&app, "me").await;
    let them = customer(&app, "them").await;
    let token = session(&app, "me").await;

    // The session's own customer, named or not.
    let (_, mine) = intent_as(&app, &token, json!({})).await;
    intent_as(&app, &token, json!({"externalCustomerId": "me"})).await;
    let (status, body) = confirm_as(&app, &token, &mine, card(VISA)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(methods_added(&app, &me).await, 1);

    // Another customer's: neither its intents can be made nor confirmed by the session.
    assert_error(
        &app.post_as(
            &token,
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "them"}),
        )
        .await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    let (_, theirs) = intent(&app, "them").await;
    assert_error(
        &confirm_as(&app, &token, &theirs, card(VISA)).await,
        404,
        INTENT_NOT_FOUND,
    );
    assert_eq!(methods_added(&app, &them).await, 0);
    // The merchant's key still can.
    let (status, body) = confirm(&app, &theirs, card(VISA)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(methods_added(&app, &them).await, 1);
}

#[tokio::test]
async fn another_tenants_or_an_unknown_intent_is_not_found() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    let (intent_id, url) = intent(&app, "user_1").await;
    let other = app.other_merchant().await;
    for key in [app.live_key(), other.test_secret_key.as_str()] {
        assert_error(
            &confirm_as(&app, key, &url, card(VISA)).await,
            404,
            INTENT_NOT_FOUND,
        );
    }
    for unknown in ["seti_nope", "anything", &format!("{intent_id}x")] {
        let (status, body) = app
            .post(
                &format!("/v1/customers/portal/setup-intents/{unknown}/confirm"),
                card(VISA),
            )
            .await;
        assert_error(&(status, body), 404, INTENT_NOT_FOUND);
    }
    assert_eq!(methods_added(&app, &customer_id).await, 0);
    let (status, _) = confirm_as(&app, "sk_test_nope", &url, card(VISA)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn create_setup_intent_needs_a_live_customer() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    assert_error(
        &app.post("/v1/customers/portal/create-setup-intent", json!({}))
            .await,
        400,
        "externalCustomerId is required",
    );
    assert_error(
        &app.post(
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "nobody"}),
        )
        .await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    let (status, body) = app
        .post(
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": 7}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(
        app.client
            .post(app.url("/v1/customers/portal/create-setup-intent"))
            .json(&json!({"externalCustomerId": "user_1"})),
    )
    .await;
    assert_eq!(status, 401, "{body}");

    // An intent made before the customer was deleted adds nothing after.
    let (_, url) = intent(&app, "user_1").await;
    let (status, body) = app.delete(&format!("/v1/customers/{customer_id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &confirm(&app, &url, card(VISA)).await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    assert_eq!(methods_added(&app, &customer_id).await, 0);
}

#[tokio::test]
async fn a_new_card_becomes_the_default_and_the_live_subscription_moves_to_it() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    let (_, url) = intent(&app, "user_1").await;
    let (_, body) = confirm(&app, &url, card(VISA)).await;
    let first = body["paymentMethod"]["id"].as_str().unwrap().to_owned();

    let (status, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD",
                "pricingData": {"components": [{"type": "flat", "amountCents": 2900}]}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let (status, subscription) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer_id, "planId": plan["plan"]["id"],
                "paymentMethodId": first}),
        )
        .await;
    assert_eq!(status, 201, "{subscription}");
    let subscription_id = subscription["subscription"]["id"].as_str().unwrap();

    let (_, url) = intent(&app, "user_1").await;
    let (status, body) = confirm(&app, &url, card("5555555555554444")).await;
    assert_eq!(status, 201, "{body}");
    let second = body["paymentMethod"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        body["paymentMethod"]["linkedToSubscription"], true,
        "{body}"
    );

    let (status, body) = app
        .get(&format!("/v1/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscription"]["paymentMethodId"], second.as_str());
    let linked: Vec<(Value, Value)> = overview_methods(&app, "user_1")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].clone(), m["linkedToSubscription"].clone()))
        .collect();
    assert_eq!(
        linked,
        vec![(json!(first), json!(false)), (json!(second), json!(true))]
    );
    // The card it replaced is free to go.
    let (status, body) = app
        .delete(&format!("/v1/customers/portal/payment-methods/{first}"))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_added_card_records_who_added_it() {
    let app = TestApp::spawn().await;
    customer(&app, "user_1").await;
    let token = session(&app, "user_1").await;
    let (_, url) = intent_as(&app, &token, json!({})).await;
    let (status, body) = confirm_as(&app, &token, &url, card(VISA)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["paymentMethod"]["id"].as_str().unwrap();
    let actor: String = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM events WHERE aggregate_id = $1 AND sequence = 1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(actor.starts_with("portal_session:"), "{actor}");
}

#[tokio::test]
async fn the_card_confirmed_last_is_the_default_whatever_order_its_intent_was_made_in() {
    let app = TestApp::spawn().await;
    let customer_id = customer(&app, "user_1").await;
    let (_, early) = intent(&app, "user_1").await;
    let (_, late) = intent(&app, "user_1").await;
    let (_, first_card) = intent(&app, "user_1").await;
    let (_, body) = confirm(&app, &first_card, card(VISA)).await;
    let first = body["paymentMethod"]["id"].as_str().unwrap().to_owned();
    let (status, plan) = app
        .post(
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD", "pricingData": {"components": []}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let (status, body) = app
        .post(
            "/v1/subscriptions",
            json!({"customerId": customer_id, "planId": plan["plan"]["id"],
                "paymentMethodId": first}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let subscription_id = body["subscription"]["id"].as_str().unwrap().to_owned();

    // The intent made later is confirmed first, the earlier one last.
    for url in [&late, &early] {
        let (status, body) = confirm(&app, url, card("5555555555554444")).await;
        assert_eq!(status, 201, "{body}");
        let added = body["paymentMethod"]["id"].as_str().unwrap().to_owned();
        let (_, body) = app
            .get(&format!("/v1/subscriptions/{subscription_id}"))
            .await;
        assert_eq!(body["subscription"]["paymentMethodId"], added.as_str());
    }
}
