//! Top-ups over HTTP: the merchant offers them (`/v1/credits/top-ups`), the portal shows those
//! offered on the customer's plan and buys them; a double click with one `Idempotency-Key` is
//! one purchase; a declined card is a 402 and a failed payment; no card is a 409; bad input is
//! a 400 that changes nothing; another merchant's top-up is not found.

use billstream_tests::billing::Billing;
use billstream_tests::{assert_error, send, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn customer(app: &TestApp, external: &str) -> String {
    app.create_customer(json!({"email": format!("{external}@example.com"),
        "externalCustomerId": external}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn session(app: &TestApp, external: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": external}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

fn calls(extra: Value) -> Value {
    let mut body = json!({"featureSlug": "api_calls", "name": "1,000 API calls",
        "creditsPerUnit": 1000, "unitAmountCents": 500, "currency": "USD",
        "expiresAfterDays": 30, "maxQuantity": 5});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

async fn top_up(app: &TestApp) -> String {
    let (status, body) = app.post("/v1/credits/top-ups", calls(json!({}))).await;
    assert_eq!(status, 201, "{body}");
    body["topUp"]["id"].as_str().unwrap().to_owned()
}

async fn buy(app: &TestApp, token: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = app
        .request_as(token, Method::POST, "/v1/customers/portal/credits/purchase")
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    send(request).await
}

async fn list(app: &TestApp, path: &str, name: &str) -> Vec<Value> {
    let (status, body) = app.get(path).await;
    assert_eq!(status, 200, "{body}");
    body[name].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_top_up_is_offered_and_listed_and_bad_input_changes_nothing() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let eur_plan = billing
        .state
        .create_plan(
            &billing.metadata,
            app::plans::NewPlan {
                name: Some("Euro".into()),
                currency: Some("EUR".into()),
                pricing_data: Some(json!({"components":[{"type":"flat","amountCents":900}]})),
                ..app::plans::NewPlan::default()
            },
        )
        .await
        .unwrap()
        .id
        .unwrap()
        .to_string();
    let refusals = [
        (
            json!({"creditsPerUnit": 0}),
            "creditsPerUnit must be a whole number from 1 to 1000000000",
        ),
        (
            json!({"unitAmountCents": -1}),
            "unitAmountCents must be a whole number of cents from 1 to 1000000000000",
        ),
        (
            json!({"currency": "XYZ"}),
            "Currency must be a three-letter ISO 4217 code",
        ),
        (
            json!({"featureSlug": "API Calls"}),
            "featureSlug must be 1 to 64 lowercase letters, digits, _ or -, starting with a letter",
        ),
        (
            json!({"maxQuantity": 0}),
            "maxQuantity must be a whole number from 1 to 10000",
        ),
        (
            json!({"expiresAfterDays": 0}),
            "expiresAfterDays must be a whole number from 1 to 3650",
        ),
        (
            json!({"name": " "}),
            "name is required: 1 to 200 characters",
        ),
        (
            json!({"planIds": [eur_plan.clone()]}),
            &format!("planIds: plan {eur_plan} is priced in EUR, not in the top-up's currency"),
        ),
        (
            json!({"planIds": ["plan_nope"]}),
            "planIds[0]: no such plan",
        ),
    ];
    for (spoiled, message) in refusals {
        let refused = app.post("/v1/credits/top-ups", calls(spoiled)).await;
        assert_error(&refused, 400, message);
    }
    let fractional = app
        .post("/v1/credits/top-ups", calls(json!({"creditsPerUnit": 1.5})))
        .await;
    assert_eq!(fractional.0, 400, "{}", fractional.1);
    assert!(list(&app, "/v1/credits/top-ups", "topUps").await.is_empty());

    let id = top_up(&app).await;
    assert!(id.starts_with("tu_"));
    let listed = list(&app, "/v1/credits/top-ups", "topUps").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["creditsPerUnit"], 1000);
    assert_eq!(listed[0]["unitAmountCents"], 500);
    assert_eq!(listed[0]["currency"], "USD");
    assert_eq!(listed[0]["planIds"], json!([]));
    assert_eq!(listed[0]["maxQuantity"], 5);

    // Offered on the portal of a customer with no plan, in whatever currency it is priced.
    customer(&app, "shopper").await;
    let token = session(&app, "shopper").await;
    let (status, credits) = app.get_as(&token, "/v1/customers/portal/credits").await;
    assert_eq!(status, 200, "{credits}");
    assert_eq!(credits["credits"]["topUps"][0]["id"], id.as_str());

    // Another merchant sees none of it, and cannot buy it.
    let other = app.other_merchant().await;
    let (status, theirs) = app
        .get_as(&other.test_secret_key, "/v1/credits/top-ups")
        .await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["topUps"], json!([]));
    let (status, theirs) = app
        .post_as(
            &other.test_secret_key,
            "/v1/customers",
            json!({"email": "o@example.com", "externalCustomerId": "theirs"}),
        )
        .await;
    assert_eq!(status, 201, "{theirs}");
    let (status, their_session) = app
        .post_as(
            &other.test_secret_key,
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "theirs"}),
        )
        .await;
    assert_eq!(status, 201, "{their_session}");
    let their_token = their_session["session"]["token"].as_str().unwrap();
    let refused = buy(
        &app,
        their_token,
        None,
        json!({"topUpId": id, "quantity": 1}),
    )
    .await;
    assert_error(&refused, 404, "Top-up not found");
}

#[tokio::test]
async fn a_double_click_with_one_key_buys_once_and_the_credits_arrive() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let customer = customer(&app, "buyer").await;
    billing.card(&customer, "4242").await;
    let id = top_up(&app).await;
    let token = session(&app, "buyer").await;
    let body = json!({"topUpId": id, "quantity": 2});
    let (first, second) = tokio::join!(
        buy(&app, &token, Some("click-1"), body.clone()),
        buy(&app, &token, Some("click-1"), body.clone()),
    );
    let answers = [&first, &second];
    assert!(
        answers.iter().any(|(status, _)| *status == 201),
        "{first:?} {second:?}"
    );
    for (status, answer) in answers {
        // The second click waits for the first, or is told it is still running.
        assert!(*status == 201 || *status == 409, "{status} {answer}");
    }
    let (status, replayed) = buy(&app, &token, Some("click-1"), body.clone()).await;
    assert_eq!(status, 201, "{replayed}");
    let purchase = &replayed["purchase"];
    assert_eq!(purchase["status"], "paid");
    assert_eq!(purchase["credits"], 2000);
    assert_eq!(purchase["amountCents"], 1000);

    let payments = list(
        &app,
        &format!("/v1/payments?customerId={customer}"),
        "payments",
    )
    .await;
    assert_eq!(payments.len(), 1, "one charge: {payments:?}");
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(payments[0]["id"], purchase["paymentId"]);
    let invoices = list(
        &app,
        &format!("/v1/invoices?customerId={customer}"),
        "invoices",
    )
    .await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["id"], purchase["invoiceId"]);
    assert_eq!(invoices[0]["status"], "paid");
    assert_eq!(invoices[0]["lines"].as_array().unwrap().len(), 1);
    assert_eq!(invoices[0]["totalAmountCents"], 1000);

    let (status, credits) = app.get_as(&token, "/v1/customers/portal/credits").await;
    assert_eq!(status, 200, "{credits}");
    let balance = &credits["credits"]["balances"][0];
    assert_eq!(balance["featureSlug"], "api_calls");
    assert_eq!(balance["remaining"], 2000);
    assert_eq!(balance["grants"][0]["source"], "topup");
    assert_eq!(balance["grants"][0]["id"], purchase["grantId"]);

    // Another click, with another key, is another purchase.
    let (status, again) = buy(&app, &token, Some("click-2"), body).await;
    assert_eq!(status, 201, "{again}");
    let payments = list(
        &app,
        &format!("/v1/payments?customerId={customer}"),
        "payments",
    )
    .await;
    assert_eq!(payments.len(), 2);
}

#[tokio::test]
async fn a_declined_card_is_a_402_with_a_failed_payment_and_no_card_is_a_409() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let id = top_up(&app).await;
    let customer = customer(&app, "declined").await;
    let token = session(&app, "declined").await;
    let body = json!({"topUpId": id, "quantity": 1});
    let refused = buy(&app, &token, None, body.clone()).await;
    assert_error(&refused, 409, "No payment method on file");
    assert!(list(
        &app,
        &format!("/v1/payments?customerId={customer}"),
        "payments"
    )
    .await
    .is_empty());

    billing.card(&customer, "0341").await;
    let declined = buy(&app, &token, None, body).await;
    assert_error(&declined, 402, "Your card was declined.");
    let payments = list(
        &app,
        &format!("/v1/payments?customerId={customer}"),
        "payments",
    )
    .await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "failed");
    assert!(list(
        &app,
        &format!("/v1/invoices?customerId={customer}"),
        "invoices"
    )
    .await
    .is_empty());
    let (_, credits) = app.get_as(&token, "/v1/customers/portal/credits").await;
    assert_eq!(credits["credits"]["balances"], json!([]));
}

#[tokio::test]
async fn a_purchase_of_no_unit_too_many_or_a_fraction_is_refused() {
    let app = TestApp::spawn().await;
    let billing = Billing::new(&app);
    let id = top_up(&app).await;
    let customer = customer(&app, "counting").await;
    billing.card(&customer, "4242").await;
    let token = session(&app, "counting").await;
    for quantity in [json!(0), json!(-1), json!(6)] {
        let refused = buy(
            &app,
            &token,
            None,
            json!({"topUpId": id, "quantity": quantity}),
        )
        .await;
        assert_error(&refused, 400, "quantity must be a whole number from 1 to 5");
    }
    let fraction = buy(&app, &token, None, json!({"topUpId": id, "quantity": 1.5})).await;
    assert_eq!(fraction.0, 400, "{}", fraction.1);
    let missing = buy(&app, &token, None, json!({"quantity": 1})).await;
    assert_error(&missing, 400, "topUpId is required: a top-up's id (tu_…)");
    let unknown = buy(
        &app,
        &token,
        None,
        json!({"topUpId": "tu_0", "quantity": 1}),
    )
    .await;
    assert_error(&unknown, 404, "Top-up not found");
    assert!(list(
        &app,
        &format!("/v1/payments?customerId={customer}"),
        "payments"
    )
    .await
    .is_empty());
}
