//! The Dodo client against the fake Dodo, over real HTTP.

use chrono::Utc;
use providers::dodo::{PaymentMethodUpdate, DEFAULT_BASE_URL, LIVE_BASE_URL};
use providers::dodo_webhook::{event_types, DodoWebhookPayload};
use providers::fakes::FakeDodo;
use providers::standard_webhooks::WebhookHeaders;
use providers::{DodoClient, DodoError, StandardWebhookSecret};
use serde_json::json;

fn client(fake: &FakeDodo) -> DodoClient {
    DodoClient::new(fake.base_url(), fake.api_key())
}

#[test]
fn the_default_base_url_is_dodos_live_api() {
    assert_eq!(DEFAULT_BASE_URL, LIVE_BASE_URL);
    assert_eq!(LIVE_BASE_URL, "https://live.dodopayments.com");
}

#[tokio::test]
async fn create_customer_sends_json_with_the_api_key() {
    let fake = FakeDodo::start().await;
    let customer = client(&fake)
        .create_customer(
            "jane@example.com",
            "Jane Doe",
            &[("billstream_customer_id", "cust_1")],
        )
        .await
        .unwrap();

    assert!(
        customer.customer_id.starts_with("cus_"),
        "{}",
        customer.customer_id
    );
    assert_eq!(customer.business_id, fake.business_id());
    assert_eq!(customer.email, "jane@example.com");
    assert_eq!(customer.name, "Jane Doe");
    assert_eq!(customer.metadata["billstream_customer_id"], "cust_1");

    let request = &fake.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/customers")
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {}", fake.api_key()).as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json().unwrap(),
        json!({"email": "jane@example.com", "name": "Jane Doe",
               "metadata": {"billstream_customer_id": "cust_1"}})
    );
}

#[tokio::test]
async fn a_new_payment_method_update_returns_dodos_payment_link() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_1", "cus_1", "active");
    let link = client(&fake)
        .update_subscription_payment_method(
            "sub_1",
            &PaymentMethodUpdate::New {
                return_url: Some("https://merchant.example/portal".into()),
            },
        )
        .await
        .unwrap();

    let payment_link = link.payment_link.unwrap();
    assert!(payment_link.starts_with(&fake.base_url()), "{payment_link}");
    assert!(link.payment_id.unwrap().starts_with("pay_"));
    assert!(link.client_secret.is_some());
    assert!(link.expires_on.unwrap() > Utc::now());

    let request = &fake.requests()[0];
    assert_eq!(request.path, "/subscriptions/sub_1/update-payment-method");
    assert_eq!(
        request.json().unwrap(),
        json!({"type": "new", "return_url": "https://merchant.example/portal"})
    );
}

#[tokio::test]
async fn an_existing_payment_method_is_switched_to_without_a_link() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_1", "cus_1", "on_hold");
    fake.add_card("pm_saved", "cus_1", "VISA", "4242", 12, 2030);
    let dodo = client(&fake);
    let link = dodo
        .update_subscription_payment_method(
            "sub_1",
            &PaymentMethodUpdate::Existing {
                payment_method_id: "pm_saved".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(link.payment_link, None);

    let subscription = dodo.retrieve_subscription("sub_1").await.unwrap();
    assert_eq!(subscription.payment_method_id.as_deref(), Some("pm_saved"));
    assert_eq!(subscription.status, "on_hold");
    assert_eq!(subscription.customer.customer_id, "cus_1");
}

#[tokio::test]
async fn updating_an_unknown_subscription_maps_dodos_error() {
    let fake = FakeDodo::start().await;
    let error = client(&fake)
        .update_subscription_payment_method(
            "sub_missing",
            &PaymentMethodUpdate::New { return_url: None },
        )
        .await
        .unwrap_err();
    match error {
        DodoError::Api {
            status,
            code,
            message,
        } => {
            assert_eq!(status, 404);
            assert_eq!(code.as_deref(), Some("NOT_FOUND"));
            assert!(message.contains("Subscription"), "{message}");
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_subscription_cannot_take_a_new_mandate() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_1", "cus_1", "cancelled");
    let error = client(&fake)
        .update_subscription_payment_method("sub_1", &PaymentMethodUpdate::New { return_url: None })
        .await
        .unwrap_err();
    assert!(
        matches!(error, DodoError::Api { status: 409, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_customers_saved_cards_are_listed() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_1", "cus_1", "active");
    fake.add_card("pm_1", "cus_1", "MASTERCARD", "4444", 3, 2031);
    let methods = client(&fake)
        .list_customer_payment_methods("cus_1")
        .await
        .unwrap();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].payment_method_id, "pm_1");
    assert_eq!(methods[0].payment_method, "card");
    let card = methods[0].card.clone().unwrap();
    assert_eq!(card.last4_digits.as_deref(), Some("4444"));
    assert_eq!(card.card_network.as_deref(), Some("MASTERCARD"));
    assert_eq!(card.expiry_month.as_deref(), Some("03"));
    assert_eq!(card.expiry_year.as_deref(), Some("2031"));
    assert_eq!(fake.requests()[0].path, "/customers/cus_1/payment-methods");
}

#[tokio::test]
async fn a_wrong_api_key_is_a_401_api_error() {
    let fake = FakeDodo::start().await;
    let error = DodoClient::new(fake.base_url(), "wrong")
        .create_customer("jane@example.com", "Jane", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DodoError::Api { status: 401, code: Some(code), .. } if code == "UNAUTHORIZED"),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_fake_refuses_a_form_body() {
    let fake = FakeDodo::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/customers", fake.base_url()))
        .bearer_auth(fake.api_key())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=jane%40example.com&name=Jane")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "INVALID_REQUEST_BODY");
}

#[tokio::test]
async fn a_completed_mandate_arrives_as_a_verifiable_subscription_updated_webhook() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_1", "cus_1", "active");
    let delivery = fake
        .complete_payment_method_update("sub_1", "pm_new", "VISA", "1111", 8, 2032)
        .unwrap();

    let secret = StandardWebhookSecret::parse(&fake.webhook_secret()).unwrap();
    let [(_, id), (_, timestamp), (_, signature)] = delivery.headers();
    let headers = WebhookHeaders {
        id: Some(&id),
        timestamp: Some(&timestamp),
        signature: Some(&signature),
    };
    let verified = secret
        .verify(&headers, delivery.body.as_bytes(), Utc::now())
        .unwrap();
    assert_eq!(verified.id, delivery.id);

    let payload = DodoWebhookPayload::parse(delivery.body.as_bytes()).unwrap();
    assert_eq!(payload.event_type, event_types::SUBSCRIPTION_UPDATED);
    assert_eq!(payload.business_id, fake.business_id());
    let subscription = payload.subscription().unwrap();
    assert_eq!(subscription.subscription_id, "sub_1");
    assert_eq!(subscription.payment_method_id.as_deref(), Some("pm_new"));

    let methods = client(&fake)
        .list_customer_payment_methods("cus_1")
        .await
        .unwrap();
    assert_eq!(
        methods[0].card.clone().unwrap().last4_digits.as_deref(),
        Some("1111")
    );
}

#[tokio::test]
async fn a_delivery_signed_with_the_fakes_secret_fails_under_another_secret() {
    let fake = FakeDodo::start().await;
    let delivery = fake.delivery(
        event_types::PAYMENT_SUCCEEDED,
        json!({"payload_type": "Payment", "payment_id": "pay_1"}),
        Utc::now().timestamp(),
    );
    let other = StandardWebhookSecret::parse("whsec_c29tZW9uZSBlbHNlcyBzZWNyZXQ=").unwrap();
    let [(_, id), (_, timestamp), (_, signature)] = delivery.headers();
    let headers = WebhookHeaders {
        id: Some(&id),
        timestamp: Some(&timestamp),
        signature: Some(&signature),
    };
    assert_eq!(
        other.verify(&headers, delivery.body.as_bytes(), Utc::now()),
        Err(providers::StandardWebhookError::SignatureMismatch)
    );
}
