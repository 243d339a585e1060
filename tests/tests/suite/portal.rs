//! The customer-portal API: sessions, the overview with subscription and payment methods,
//! moving the subscription to another card, removing a card, subscription status; and the
//! safety rule that a session token reaches its own customer only.

use billstream_tests::billing::Billing;
use billstream_tests::{assert_error, TestApp};
use domain::id::{CustomerId, OrganizationId};
use domain::organization::OrganizationCommand;
use domain::subscription::SubscriptionCommand;
use reqwest::Method;
use serde_json::{json, Value};

const CUSTOMER_NOT_FOUND: &str = "Customer not found or access denied";
const PAYMENT_METHOD_NOT_FOUND: &str = "Payment method not found";

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

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_is_created_for_a_live_customer_by_its_external_id() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "jane@example.com", "externalCustomerId": "user_1"}))
        .await;
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "user_1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["session"]["token"].as_str().unwrap();
    assert!(token.starts_with("ps_"), "{body}");
    assert!(body["session"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/portal?session={token}")));
    let expires = billstream_tests::timestamp(&body["session"]["expiresAt"]);
    let hour = expires - chrono::Utc::now();
    assert!(
        hour > chrono::Duration::minutes(59) && hour <= chrono::Duration::minutes(60),
        "{hour}"
    );

    assert_error(
        &app.post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "nobody"}),
        )
        .await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    assert_error(
        &app.post("/v1/customers/portal/sessions", json!({})).await,
        400,
        "externalCustomerId is required",
    );
    // A session cannot make sessions, nor reach the merchant's API.
    assert_error(
        &app.post_as(
            token,
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "user_1"}),
        )
        .await,
        401,
        "Invalid API key",
    );
    assert_error(
        &app.get_as(token, "/v1/customers").await,
        401,
        "Invalid API key",
    );
    assert_error(
        &app.get_as("ps_not_a_session", "/v1/customers/portal/overview")
            .await,
        401,
        "Invalid or expired portal session",
    );
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "jane@example.com", "externalCustomerId": "user_1"}))
        .await;
    let token = session(&app, "user_1").await;
    let (status, _) = app.get_as(&token, "/v1/customers/portal/overview").await;
    assert_eq!(status, 200);
    sqlx::query("UPDATE portal_sessions SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_error(
        &app.get_as(&token, "/v1/customers/portal/overview").await,
        401,
        "Invalid or expired portal session",
    );
}

#[tokio::test]
async fn the_overview_shows_the_subscription_and_cards_and_follows_a_move() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(
            json!({"email": "jane@example.com", "name": "Jane", "externalCustomerId": "user_1"}),
        )
        .await;
    let customer_id = id(&customer);
    let billing = Billing::new(&app);
    let first = billing.card(&customer_id, "4242").await;
    let second = billing.card(&customer_id, "1881").await;
    let (subscription, plan) = billing.subscription(&customer_id, &first).await;

    let token = session(&app, "user_1").await;
    let (status, body) = app.get_as(&token, "/v1/customers/portal/overview").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["portal"]["subscription"],
        json!({
            "id": subscription,
            "stableSubscriptionId": subscription,
            "status": "active",
            "planId": plan,
            "gracePeriodEndsAt": null,
            "paymentMethodId": first,
        })
    );
    assert_eq!(
        body["portal"]["paymentMethods"],
        json!([
            {"id": first, "provider": "sandbox", "paymentType": "card", "status": "active",
             "cardBrand": "visa", "cardLastFour": "4242", "cardExpiryMonth": 12,
             "cardExpiryYear": 2030, "linkedToSubscription": true},
            {"id": second, "provider": "sandbox", "paymentType": "card", "status": "active",
             "cardBrand": "visa", "cardLastFour": "1881", "cardExpiryMonth": 12,
             "cardExpiryYear": 2030, "linkedToSubscription": false},
        ])
    );

    // The linked card cannot go; the session moves the subscription to the other one.
    assert_error(
        &app.delete_as(
            &token,
            &format!("/v1/customers/portal/payment-methods/{first}"),
        )
        .await,
        409,
        "Payment method is linked to an active subscription",
    );
    let (status, body) = app
        .post_as(
            &token,
            "/v1/customers/portal/set-subscription-payment-method",
            json!({"paymentMethodId": second}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"success": true}));
    let (_, body) = app.get_as(&token, "/v1/customers/portal/overview").await;
    assert_eq!(body["portal"]["subscription"]["paymentMethodId"], second);
    let linked: Vec<(Value, Value)> = body["portal"]["paymentMethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].clone(), m["linkedToSubscription"].clone()))
        .collect();
    assert_eq!(
        linked,
        vec![(json!(first), json!(false)), (json!(second), json!(true))]
    );

    // Now the first card is free to go, and goes from the overview.
    let (status, body) = app
        .delete_as(
            &token,
            &format!("/v1/customers/portal/payment-methods/{first}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"success": true}));
    let (_, body) = app
        .get("/v1/customers/portal/overview?externalCustomerId=user_1")
        .await;
    let ids: Vec<&str> = body["portal"]["paymentMethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![second.as_str()]);
    // Removed is gone: linking it or removing it again is "not found".
    assert_error(
        &app.delete_as(
            &token,
            &format!("/v1/customers/portal/payment-methods/{first}"),
        )
        .await,
        404,
        PAYMENT_METHOD_NOT_FOUND,
    );
    assert_error(
        &app.post_as(
            &token,
            "/v1/customers/portal/set-subscription-payment-method",
            json!({"paymentMethodId": first}),
        )
        .await,
        404,
        PAYMENT_METHOD_NOT_FOUND,
    );
}

#[tokio::test]
async fn subscription_status_answers_with_the_plan_or_no_subscription() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(
            json!({"email": "jane@example.com", "name": "Jane", "externalCustomerId": "user_1"}),
        )
        .await;
    let customer_id = id(&customer);
    let path = "/v1/customers/subscription-status?externalCustomerId=user_1";
    let (status, body) = app.get(path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "hasActiveSubscription": false,
            "customer": {"id": customer_id, "name": "Jane", "email": "jane@example.com"},
            "subscription": null,
        })
    );

    let billing = Billing::new(&app);
    let card = billing.card(&customer_id, "4242").await;
    let (subscription, plan) = billing.subscription(&customer_id, &card).await;
    let (status, body) = app.get(path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hasActiveSubscription"], true);
    let summary = &body["subscription"];
    assert_eq!(summary["id"], subscription);
    assert_eq!(summary["planId"], plan);
    assert_eq!(summary["planName"], "Pro");
    assert_eq!(summary["planDescription"], "Pro plan");
    assert!(summary["priceId"].as_str().unwrap().starts_with("price_"));
    assert_eq!(summary["currency"], "USD");
    assert_eq!(
        summary["pricingData"],
        json!({"components": [{"type": "flat", "amountCents": 2900}]})
    );
    assert!(summary["startTimestamp"].is_string(), "{body}");

    // Without a live subscription there is nothing to move a card to.
    billing
        .state
        .subscriptions
        .execute(
            &subscription,
            SubscriptionCommand::CancelSubscription {
                tenant: billing.tenant.clone(),
                at_period_end: false,
            },
            &billing.metadata,
        )
        .await
        .unwrap();
    let (_, body) = app.get(path).await;
    assert_eq!(body["hasActiveSubscription"], false);
    assert_error(
        &app.post(
            "/v1/customers/portal/set-subscription-payment-method",
            json!({"externalCustomerId": "user_1", "paymentMethodId": card}),
        )
        .await,
        409,
        "Customer has no active subscription",
    );
    assert_error(
        &app.get("/v1/customers/subscription-status?externalCustomerId=nobody")
            .await,
        404,
        CUSTOMER_NOT_FOUND,
    );
}

/// A session token tries every portal endpoint with another customer's ids, and another
/// tenant's key tries them with this tenant's: "not found" everywhere, and nothing changes.
#[tokio::test]
async fn a_session_reaches_only_its_own_customer_on_every_portal_endpoint() {
    let app = TestApp::spawn().await;
    let mine = app
        .create_customer(json!({"email": "me@example.com", "externalCustomerId": "me"}))
        .await;
    let theirs = app
        .create_customer(json!({"email": "them@example.com", "externalCustomerId": "them"}))
        .await;
    let billing = Billing::new(&app);
    let my_card = billing.card(&id(&mine), "1111").await;
    let their_card = billing.card(&id(&theirs), "2222").await;
    let their_spare = billing.card(&id(&theirs), "3333").await;
    billing.subscription(&id(&theirs), &their_card).await;
    billing.subscription(&id(&mine), &my_card).await;
    let token = session(&app, "me").await;
    let their_id = id(&theirs);
    // They are in an organization, so only the session rule can hide it.
    let organization = OrganizationId::generate();
    billing
        .state
        .organizations
        .execute_new(
            organization.as_str(),
            OrganizationCommand::CreateOrganization {
                id: organization.clone(),
                tenant: billing.tenant.clone(),
                name: Some("Theirs".into()),
                primary_customer_id: CustomerId::parse(&their_id).unwrap(),
            },
            &billing.metadata,
        )
        .await
        .unwrap();
    let (status, _) = app
        .get(&format!("/v1/customers/{their_id}/organization-customers"))
        .await;
    assert_eq!(status, 200, "the merchant's key sees it");

    let attempts: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::GET,
            "/v1/customers/portal/overview?externalCustomerId=them".into(),
            None,
            CUSTOMER_NOT_FOUND,
        ),
        (
            Method::GET,
            "/v1/customers/subscription-status?externalCustomerId=them".into(),
            None,
            CUSTOMER_NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/customers/portal/set-subscription-payment-method".into(),
            Some(json!({"externalCustomerId": "them", "paymentMethodId": their_spare})),
            CUSTOMER_NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/customers/portal/set-subscription-payment-method".into(),
            Some(json!({"paymentMethodId": their_spare})),
            PAYMENT_METHOD_NOT_FOUND,
        ),
        (
            Method::DELETE,
            format!("/v1/customers/portal/payment-methods/{their_spare}"),
            None,
            PAYMENT_METHOD_NOT_FOUND,
        ),
        (
            Method::GET,
            format!("/v1/customers/{their_id}/organization-customers"),
            None,
            CUSTOMER_NOT_FOUND,
        ),
        (
            Method::POST,
            "/v1/customers/portal/create-setup-intent".into(),
            Some(json!({"externalCustomerId": "them"})),
            CUSTOMER_NOT_FOUND,
        ),
    ];
    for (method, path, body, message) in &attempts {
        let mut request = app.request_as(&token, method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = billstream_tests::send(request).await;
        assert_error(&response, 404, message);
    }

    // Another merchant's key finds nothing of this one's, by any id.
    let other = app.other_merchant().await;
    for (method, path, body) in [
        (
            Method::GET,
            "/v1/customers/portal/overview?externalCustomerId=them".to_string(),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/customers/portal/payment-methods/{their_spare}"),
            None,
        ),
        (
            Method::POST,
            "/v1/customers/portal/set-subscription-payment-method".to_string(),
            Some(json!({"externalCustomerId": "them", "paymentMethodId": their_spare})),
        ),
    ] {
        let mut request = app.request_as(&other.test_secret_key, method, &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, body) = billstream_tests::send(request).await;
        assert_eq!(status, 404, "{path}: {body}");
    }

    // Their cards are as they were.
    let (_, body) = app
        .get("/v1/customers/portal/overview?externalCustomerId=them")
        .await;
    let cards: Vec<(Value, Value)> = body["portal"]["paymentMethods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].clone(), m["linkedToSubscription"].clone()))
        .collect();
    assert_eq!(
        cards,
        vec![
            (json!(their_card), json!(true)),
            (json!(their_spare), json!(false))
        ]
    );
}
