//! The Stripe client against the fake Stripe, over real HTTP.

use chrono::Utc;
use providers::fakes::{FakeDodo, FakeStripe};
use providers::stripe::FORM_CONTENT_TYPE;
use providers::stripe_webhook::construct_event;
use providers::{StripeClient, StripeError};

fn client(fake: &FakeStripe) -> StripeClient {
    StripeClient::new(fake.base_url(), fake.secret_key())
}

#[tokio::test]
async fn create_customer_sends_a_form_encoded_body_with_the_secret_key() {
    let fake = FakeStripe::start().await;
    let customer = client(&fake)
        .create_customer(
            "jane@example.com",
            Some("Jane Doe"),
            &[("billstream_customer_id", "cust_123")],
            Some("idem-1"),
        )
        .await
        .unwrap();

    assert!(customer.id.starts_with("cus_"), "{}", customer.id);
    assert_eq!(customer.email.as_deref(), Some("jane@example.com"));
    assert_eq!(customer.metadata["billstream_customer_id"], "cust_123");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/customers")
    );
    assert_eq!(request.header("content-type"), Some(FORM_CONTENT_TYPE));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", fake.secret_key()).as_str())
    );
    assert_eq!(request.header("idempotency-key"), Some("idem-1"));
    assert!(request.header("stripe-version").is_some());
    assert!(
        request.json().is_none(),
        "the body must not be JSON: {}",
        request.body
    );
    assert_eq!(
        request.form(),
        vec![
            ("email".to_owned(), "jane@example.com".to_owned()),
            ("name".to_owned(), "Jane Doe".to_owned()),
            (
                "metadata[billstream_customer_id]".to_owned(),
                "cust_123".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_customer_without_a_name_sends_no_name() {
    let fake = FakeStripe::start().await;
    client(&fake)
        .create_customer("jane@example.com", None, &[], None)
        .await
        .unwrap();
    let request = &fake.requests()[0];
    assert_eq!(request.form_value("name"), None);
    assert_eq!(request.header("idempotency-key"), None);
}

#[tokio::test]
async fn a_setup_intent_is_created_for_off_session_card_use() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    let customer = stripe
        .create_customer("jane@example.com", None, &[], None)
        .await
        .unwrap();
    let intent = stripe
        .create_setup_intent(
            &customer.id,
            &[("billstream_customer_id", "cust_123")],
            None,
        )
        .await
        .unwrap();

    assert!(intent.id.starts_with("seti_"), "{}", intent.id);
    assert!(
        intent
            .client_secret
            .starts_with(&format!("{}_secret_", intent.id)),
        "{}",
        intent.client_secret
    );
    assert_eq!(intent.customer.as_deref(), Some(customer.id.as_str()));
    assert_eq!(intent.payment_method, None);
    assert_eq!(intent.status, "requires_payment_method");

    let request = fake.requests().pop().unwrap();
    assert_eq!(request.path, "/v1/setup_intents");
    assert_eq!(
        request.form_value("customer").as_deref(),
        Some(customer.id.as_str())
    );
    assert_eq!(request.form_value("usage").as_deref(), Some("off_session"));
    assert_eq!(
        request.form_value("payment_method_types[]").as_deref(),
        Some("card")
    );
    assert_eq!(
        request
            .form_value("metadata[billstream_customer_id]")
            .as_deref(),
        Some("cust_123")
    );
    // Brackets travel percent-encoded, as in any form body.
    assert!(
        request.body.contains("payment_method_types%5B%5D=card"),
        "{}",
        request.body
    );
}

#[tokio::test]
async fn a_setup_intent_for_an_unknown_customer_maps_stripes_error() {
    let fake = FakeStripe::start().await;
    let error = client(&fake)
        .create_setup_intent("cus_missing", &[], None)
        .await
        .unwrap_err();
    match error {
        StripeError::Api {
            status,
            kind,
            code,
            message,
            param,
            decline_code,
        } => {
            assert_eq!(decline_code, None);
            assert_eq!(status, 400);
            assert_eq!(kind, "invalid_request_error");
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert_eq!(param.as_deref(), Some("customer"));
            assert!(message.contains("cus_missing"), "{message}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_registered_card_is_retrieved() {
    let fake = FakeStripe::start().await;
    fake.add_card("pm_card_visa", "cus_1", "visa", "4242", 12, 2030);
    let method = client(&fake)
        .retrieve_payment_method("pm_card_visa")
        .await
        .unwrap();
    assert_eq!(method.id, "pm_card_visa");
    assert_eq!(method.kind, "card");
    assert_eq!(method.customer.as_deref(), Some("cus_1"));
    let card = method.card.unwrap();
    assert_eq!(
        (
            card.brand.as_str(),
            card.last4.as_str(),
            card.exp_month,
            card.exp_year
        ),
        ("visa", "4242", 12, 2030)
    );
    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/payment_methods/pm_card_visa")
    );
}

#[tokio::test]
async fn an_unknown_payment_method_is_a_404_api_error() {
    let fake = FakeStripe::start().await;
    let error = client(&fake)
        .retrieve_payment_method("pm_missing")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StripeError::Api { status: 404, code: Some(code), .. } if code == "resource_missing"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_id_cannot_change_the_requested_path() {
    let fake = FakeStripe::start().await;
    let error = client(&fake)
        .retrieve_payment_method("../customers")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StripeError::Api { status: 404, .. }),
        "{error:?}"
    );
    assert_eq!(
        fake.requests()[0].path,
        "/v1/payment_methods/..%2Fcustomers"
    );
}

#[tokio::test]
async fn a_wrong_secret_key_is_a_401_api_error() {
    let fake = FakeStripe::start().await;
    let error = StripeClient::new(fake.base_url(), "sk_test_wrong")
        .create_customer("jane@example.com", None, &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StripeError::Api { status: 401, kind, .. } if kind == "invalid_request_error"),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_fake_refuses_a_json_body_like_stripe() {
    let fake = FakeStripe::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/customers", fake.base_url()))
        .bearer_auth(fake.secret_key())
        .json(&serde_json::json!({"email": "jane@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn the_fake_refuses_unknown_parameters_like_stripe() {
    let fake = FakeStripe::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/customers", fake.base_url()))
        .bearer_auth(fake.secret_key())
        .header("content-type", FORM_CONTENT_TYPE)
        .body("emial=jane%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "parameter_unknown");
    assert_eq!(body["error"]["param"], "emial");
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_first_customer() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    let first = stripe
        .create_customer("jane@example.com", None, &[], Some("same-key"))
        .await
        .unwrap();
    let retry = stripe
        .create_customer("jane@example.com", None, &[], Some("same-key"))
        .await
        .unwrap();
    assert_eq!(first.id, retry.id);

    let error = stripe
        .create_customer("other@example.com", None, &[], Some("same-key"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StripeError::Api { status: 400, kind, .. } if kind == "idempotency_error"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_stripes_is_an_unexpected_response() {
    // Dodo's error body is JSON, but not Stripe's envelope.
    let dodo = FakeDodo::start().await;
    let error = StripeClient::new(dodo.base_url(), "sk_test_x")
        .retrieve_payment_method("pm_1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, StripeError::UnexpectedResponse { status: 401, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unreachable_stripe_is_a_transport_error() {
    let base_url = {
        let fake = FakeStripe::start().await;
        fake.base_url()
        // Dropped here: nothing listens on that port any more.
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let error = StripeClient::new(base_url, "sk_test_x")
        .retrieve_payment_method("pm_1")
        .await
        .unwrap_err();
    assert!(matches!(error, StripeError::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn a_completed_setup_intent_arrives_as_a_verifiable_webhook_naming_the_card() {
    let fake = FakeStripe::start().await;
    let stripe = client(&fake);
    let customer = stripe
        .create_customer("jane@example.com", None, &[], None)
        .await
        .unwrap();
    let intent = stripe
        .create_setup_intent(
            &customer.id,
            &[("billstream_customer_id", "cust_123")],
            None,
        )
        .await
        .unwrap();
    fake.add_card("pm_new", "", "mastercard", "4444", 3, 2031);

    let delivery = fake.succeed_setup_intent(&intent.id, "pm_new").unwrap();
    let event = construct_event(
        delivery.body.as_bytes(),
        Some(&delivery.signature),
        fake.webhook_secret(),
        Utc::now(),
    )
    .unwrap();
    assert_eq!(event.id, delivery.event_id);
    let succeeded = event.setup_intent_succeeded().unwrap();
    assert_eq!(succeeded.setup_intent_id, intent.id);
    assert_eq!(succeeded.customer.as_deref(), Some(customer.id.as_str()));
    assert_eq!(succeeded.payment_method, "pm_new");
    assert_eq!(succeeded.metadata["billstream_customer_id"], "cust_123");

    let method = stripe.retrieve_payment_method("pm_new").await.unwrap();
    assert_eq!(method.customer.as_deref(), Some(customer.id.as_str()));
    assert_eq!(method.card.unwrap().last4, "4444");
    assert_eq!(
        fake.setup_intent(&intent.id).unwrap()["status"],
        "succeeded"
    );
}

#[tokio::test]
async fn an_old_delivery_from_the_fake_fails_verification() {
    let fake = FakeStripe::start().await;
    let old = Utc::now().timestamp() - 600;
    let delivery = fake.event_delivery(
        "setup_intent.succeeded",
        serde_json::json!({"id": "seti_1"}),
        old,
    );
    let error = construct_event(
        delivery.body.as_bytes(),
        Some(&delivery.signature),
        fake.webhook_secret(),
        Utc::now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, providers::StripeWebhookError::StaleTimestamp { .. }),
        "{error:?}"
    );
}
