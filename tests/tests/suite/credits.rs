//! Credits over HTTP: grants, usage drawn from them (402 "Insufficient credits" when they do
//! not cover it), one usage per idempotencyKey, balances with their grants, revocation, and
//! the refusals that change nothing.

use billstream_tests::{assert_error, TestApp};
use serde_json::{json, Value};

async fn customer(app: &TestApp, external: &str) -> String {
    app.create_customer(json!({"email": format!("{external}@example.com"),
        "externalCustomerId": external}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn balance(app: &TestApp, customer: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/credits/customers/{customer}/balance"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["balances"].clone()
}

#[tokio::test]
async fn grants_feed_usage_until_they_run_out_and_a_key_records_once() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "user_credits").await;
    let (status, granted) = app
        .post(
            "/v1/credits/grants",
            json!({"customerId": customer, "featureSlug": "api_calls", "amount": 100,
                "source": "promotion", "referenceCode": "WELCOME"}),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    let grant = &granted["grant"];
    assert_eq!(grant["initialAmount"], 100);
    assert_eq!(grant["remainingAmount"], 100);
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["source"], "promotion");
    assert_eq!(grant["priority"], 50);
    assert!(grant["id"].as_str().unwrap().starts_with("cg_"));

    let usage = json!({"externalCustomerId": "user_credits", "featureSlug": "api_calls",
        "quantity": 30, "idempotencyKey": "req-1"});
    let (status, first) = app.post("/v1/usage", usage.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["usage"]["creditsConsumed"], 30);
    assert_eq!(first["usage"]["overageUnits"], 0);
    assert_eq!(first["usage"]["remaining"], 70);
    let (status, again) = app.post("/v1/usage", usage).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first, "the same key answers the same");

    let too_much = app
        .post(
            "/v1/usage",
            json!({"customerId": customer, "featureSlug": "api_calls", "quantity": 71,
                "idempotencyKey": "req-2"}),
        )
        .await;
    assert_error(&too_much, 402, "Insufficient credits");
    let balances = balance(&app, &customer).await;
    assert_eq!(balances[0]["featureSlug"], "api_calls");
    assert_eq!(
        (
            balances[0]["remaining"].clone(),
            balances[0]["total"].clone(),
            balances[0]["used"].clone()
        ),
        (json!(70), json!(100), json!(30))
    );
    assert_eq!(balances[0]["grants"].as_array().unwrap().len(), 1);

    let id = grant["id"].as_str().unwrap();
    let (status, revoked) = app
        .post(&format!("/v1/credits/grants/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["grant"]["status"], "revoked");
    assert_error(
        &app.post(&format!("/v1/credits/grants/{id}/revoke"), json!({}))
            .await,
        409,
        "Credit grant is already revoked",
    );
    assert_eq!(balance(&app, &customer).await[0]["remaining"], 0);
    let (status, listed) = app
        .get(&format!(
            "/v1/credits/customers/{customer}/grants?featureSlug=api_calls&status=revoked"
        ))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["grants"].as_array().unwrap().len(), 1);

    // The ledger, in order: the grant, the usage (once, for all its repeats), the revocation.
    let path = format!("/v1/credits/customers/{customer}/transactions");
    let (status, ledger) = app.get(&path).await;
    assert_eq!(status, 200, "{ledger}");
    let entries: Vec<(String, i64)> = ledger["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_owned(),
                t["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            ("grant".to_owned(), 100),
            ("usage".to_owned(), -30),
            ("revocation".to_owned(), -70)
        ]
    );
    assert_eq!(ledger["transactions"][1]["usageId"], first["usage"]["id"]);
    let (_, page) = app.get(&format!("{path}?limit=2")).await;
    assert_eq!(page["hasMore"], true);
    let after = page["transactions"][1]["id"].as_str().unwrap();
    let (_, rest) = app
        .get(&format!("{path}?limit=2&startingAfter={after}"))
        .await;
    assert_eq!(rest["hasMore"], false);
    assert_eq!(rest["transactions"][0]["type"], "revocation");
}

#[tokio::test]
async fn bad_credit_requests_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let customer = customer(&app, "user_bad").await;
    let grant = |changes: Value| {
        let mut body = json!({"customerId": customer, "featureSlug": "api_calls", "amount": 10});
        for (key, value) in changes.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for bad in [
        grant(json!({"amount": 0})),
        grant(json!({"amount": -1})),
        grant(json!({"amount": 2.5})),
        grant(json!({"featureSlug": "API calls"})),
        grant(json!({"source": "topup"})),
        grant(json!({"priority": 101})),
        grant(json!({"startsAt": "2030-01-02T00:00:00Z", "expiresAt": "2030-01-01T00:00:00Z"})),
    ] {
        let refused = app.post("/v1/credits/grants", bad.clone()).await;
        assert_eq!(refused.0, 400, "{bad}: {}", refused.1);
    }
    let (status, listed) = app
        .get(&format!("/v1/credits/customers/{customer}/grants"))
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["grants"], json!([]));

    let (status, body) = app.post("/v1/credits/grants", grant(json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let usage = |changes: Value| {
        let mut body = json!({"customerId": customer, "featureSlug": "api_calls",
            "quantity": 1, "idempotencyKey": "k"});
        for (key, value) in changes.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for bad in [
        usage(json!({"quantity": 0})),
        usage(json!({"quantity": -2})),
        usage(json!({"quantity": 1.5})),
        usage(json!({"idempotencyKey": ""})),
        usage(json!({"idempotencyKey": "k".repeat(256)})),
        usage(json!({"featureSlug": "Nope!"})),
        usage(json!({"externalCustomerId": "user_bad"})),
    ] {
        let refused = app.post("/v1/usage", bad.clone()).await;
        assert_eq!(refused.0, 400, "{bad}: {}", refused.1);
    }
    let (status, body) = app
        .post(
            "/v1/usage",
            json!({"featureSlug": "api_calls", "quantity": 1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(balance(&app, &customer).await[0]["remaining"], 10);

    // Another merchant's customer and grant are not found, not even by their ids.
    let other = app.other_merchant().await;
    let (status, body) = app
        .get_as(
            &other.test_secret_key,
            &format!("/v1/credits/customers/{customer}/balance"),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let grant_id = app
        .get(&format!("/v1/credits/customers/{customer}/grants"))
        .await
        .1["grants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .post_as(
            &other.test_secret_key,
            &format!("/v1/credits/grants/{grant_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn the_portal_shows_its_customers_credits_and_no_one_elses() {
    let app = TestApp::spawn().await;
    let mine = customer(&app, "user_mine").await;
    let theirs = customer(&app, "user_theirs").await;
    for (customer, amount) in [(&mine, 40), (&theirs, 7)] {
        let (status, body) = app
            .post(
                "/v1/credits/grants",
                json!({"customerId": customer, "featureSlug": "api_calls", "amount": amount}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = app
        .post(
            "/v1/usage",
            json!({"customerId": mine, "featureSlug": "api_calls", "quantity": 15,
                "idempotencyKey": "portal-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, session) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "user_mine"}),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let token = session["session"]["token"].as_str().unwrap();
    let (status, view) = app.get_as(token, "/v1/customers/portal/credits").await;
    assert_eq!(status, 200, "{view}");
    let credits = &view["credits"];
    assert_eq!(credits["balances"][0]["remaining"], 25);
    assert_eq!(credits["balances"][0]["total"], 40);
    assert_eq!(credits["balances"][0]["used"], 15);
    assert_eq!(credits["topUps"], json!([]));
    let kinds: Vec<&str> = credits["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["grant", "usage"]);
    // The session reaches its own customer only.
    let (status, body) = app
        .get_as(
            token,
            "/v1/customers/portal/credits?externalCustomerId=user_theirs",
        )
        .await;
    assert!(status == 403 || status == 404, "{status} {body}");
    // A secret key names the customer.
    let (status, by_key) = app
        .get("/v1/customers/portal/credits?externalCustomerId=user_theirs")
        .await;
    assert_eq!(status, 200, "{by_key}");
    assert_eq!(by_key["credits"]["balances"][0]["remaining"], 7);
    let (status, body) = app.get("/v1/customers/portal/credits").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_plan_takes_its_credit_allowances_and_refuses_bad_ones() {
    let app = TestApp::spawn().await;
    let plan = |credits: Value| {
        json!({"name": "Pro", "currency": "USD", "creditAllowance": 1000,
            "pricingData": {"components": [{"type": "flat", "name": "Pro", "amountCents": 900}]},
            "credits": credits})
    };
    let (status, created) = app
        .post(
            "/v1/plans",
            plan(
                json!([{"featureSlug": "api_calls", "name": "API calls", "amount": 1000},
                {"featureSlug": "exports", "amount": 3, "rollover": true}]),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["plan"]["creditAllowance"], 1000,
        "the seed's field still works"
    );
    assert_eq!(
        created["plan"]["credits"],
        json!([{"featureSlug": "api_calls", "name": "API calls", "amount": 1000, "rollover": false},
            {"featureSlug": "exports", "name": "exports", "amount": 3, "rollover": true}])
    );
    let id = created["plan"]["id"].as_str().unwrap();
    let (status, listed) = app.get("/v1/plans").await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(listed["credits"], created["plan"]["credits"]);
    for bad in [
        json!([{"featureSlug": "api_calls", "amount": 0}]),
        json!([{"featureSlug": "API", "amount": 5}]),
        json!([{"amount": 5}]),
        json!([{"featureSlug": "a", "amount": 1}, {"featureSlug": "a", "amount": 2}]),
        json!([{"featureSlug": "a", "amount": 1.5}]),
    ] {
        let refused = app.post("/v1/plans", plan(bad.clone())).await;
        assert_eq!(refused.0, 400, "{bad}: {}", refused.1);
    }
}
