//! A merchant billing through Dodo Payments, against a fake Dodo. A Dodo mandate hangs off a
//! Dodo subscription: `subscription.active` (its metadata naming the billstream subscription)
//! links the two, `create-setup-intent` answers Dodo's payment link for the customer's live
//! subscription, and the `subscription.updated` the completed link sends adds the card once.

use billstream::merchants::{
    create_merchant_with_providers, DodoSettings, NewMerchant, Provider, ProviderSettings,
};
use billstream_tests::{assert_error, send, TestApp};
use chrono::Utc;
use domain::tenant::Mode;
use providers::dodo_webhook::event_types;
use providers::fakes::{DodoDelivery, FakeDodo};
use providers::StandardWebhookSecret;
use serde_json::{json, Value};

const NEEDS_SUBSCRIPTION: &str = "Active subscription required to add mandate for Dodo";
const INVALID_SIGNATURE: &str = "Invalid webhook signature";
const STALE: &str = "Webhook timestamp is outside the 5-minute tolerance";

struct Setup {
    app: TestApp,
    dodo: FakeDodo,
    merchant: NewMerchant,
}

async fn dodo_merchant(app: &TestApp, dodo: &FakeDodo, api_key: &str) -> NewMerchant {
    let settings = ProviderSettings {
        dodo: DodoSettings {
            api_key: Some(api_key.to_owned()),
            webhook_secret: Some(dodo.webhook_secret()),
            base_url: Some(dodo.base_url()),
            mode: Mode::Test,
        },
        ..ProviderSettings::new(Provider::Dodo)
    };
    create_merchant_with_providers(&app.pool, "Dodo merchant", &settings)
        .await
        .expect("dodo merchant")
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let dodo = FakeDodo::start().await;
    let merchant = dodo_merchant(&app, &dodo, dodo.api_key()).await;
    Setup {
        app,
        dodo,
        merchant,
    }
}

impl Setup {
    fn key(&self) -> &str {
        &self.merchant.test_secret_key
    }

    async fn customer(&self, external_id: &str) -> String {
        let (status, body) = self
            .app
            .post_as(
                self.key(),
                "/v1/customers",
                json!({"email": format!("{external_id}@example.com"),
                    "externalCustomerId": external_id}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["customer"]["id"].as_str().unwrap().to_owned()
    }

    /// A live billstream subscription of the customer, without a payment method.
    async fn subscription(&self, customer_id: &str) -> String {
        let (status, plan) = self
            .app
            .post_as(
                self.key(),
                "/v1/plans",
                json!({"name": "Pro", "currency": "USD",
                    "pricingData": {"components": [{"type": "flat", "amountCents": 2900}]}}),
            )
            .await;
        assert_eq!(status, 201, "{plan}");
        let (status, body) = self
            .app
            .post_as(
                self.key(),
                "/v1/subscriptions",
                json!({"customerId": customer_id, "planId": plan["plan"]["id"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["subscription"]["id"].as_str().unwrap().to_owned()
    }

    /// The `subscription.active` Dodo sends once the checkout for billstream subscription
    /// `ours` went through, its metadata naming `ours`.
    fn activated(&self, dodo_subscription: &str, dodo_customer: &str, ours: &str) -> DodoDelivery {
        self.dodo
            .add_subscription(dodo_subscription, dodo_customer, "active");
        let mut data = self.dodo.subscription(dodo_subscription).unwrap();
        data["metadata"] = json!({"billstream_subscription_id": ours});
        data["payload_type"] = json!("Subscription");
        self.dodo.delivery(
            event_types::SUBSCRIPTION_ACTIVE,
            data,
            Utc::now().timestamp(),
        )
    }

    async fn deliver_to(
        &self,
        merchant_id: &str,
        body: &str,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .post(self.app.url(&format!("/v1/webhooks/dodo/{merchant_id}")))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        send(request).await
    }

    async fn deliver(&self, delivery: &DodoDelivery) -> (u16, Value) {
        self.deliver_to(
            &self.merchant.merchant_id,
            &delivery.body,
            &delivery.headers(),
        )
        .await
    }

    async fn create_setup_intent(&self, key: &str, external_id: &str) -> (u16, Value) {
        self.app
            .post_as(
                key,
                "/v1/customers/portal/create-setup-intent",
                json!({"externalCustomerId": external_id}),
            )
            .await
    }

    async fn methods_added(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM payment_method_list WHERE provider = 'dodo'")
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn links(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM provider_subscriptions")
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    async fn events_recorded(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM provider_webhook_events")
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    fn update_requests(&self) -> Vec<providers::fakes::RecordedRequest> {
        self.dodo
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/update-payment-method"))
            .collect()
    }
}

#[tokio::test]
async fn without_a_live_subscription_there_is_no_dodo_mandate() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let response = s.create_setup_intent(s.key(), "user_1").await;
    assert_error(&response, 409, NEEDS_SUBSCRIPTION);

    // A canceled subscription is no live one either.
    let ours = s.subscription(&customer_id).await;
    let (status, body) = s.deliver(&s.activated("sub_d1", "cus_d1", &ours)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .app
        .post_as(
            s.key(),
            &format!("/v1/subscriptions/{ours}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &s.create_setup_intent(s.key(), "user_1").await,
        409,
        NEEDS_SUBSCRIPTION,
    );
    assert!(s.update_requests().is_empty(), "Dodo is not asked");
}

#[tokio::test]
async fn a_subscription_dodo_has_not_linked_yet_gets_no_link() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let ours = s.subscription(&customer_id).await;
    assert_error(
        &s.create_setup_intent(s.key(), "user_1").await,
        409,
        &format!(
            "Subscription {ours} has no Dodo subscription yet: Dodo links it when the \
             checkout's metadata names billstream_subscription_id"
        ),
    );
}

#[tokio::test]
async fn the_payment_link_is_dodos_for_the_linked_subscription() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let ours = s.subscription(&customer_id).await;
    let (status, body) = s.deliver(&s.activated("sub_d1", "cus_d1", &ours)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": false}));

    let (status, body) = s.create_setup_intent(s.key(), "user_1").await;
    assert_eq!(status, 200, "{body}");
    let link = body["dodo"]["paymentLink"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/checkout/pay_", s.dodo.base_url())),
        "{body}"
    );
    assert_eq!(
        body,
        json!({"provider": "dodo", "dodo": {"paymentLink": link}})
    );
    let requests = s.update_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].path,
        "/subscriptions/sub_d1/update-payment-method"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&requests[0].body).unwrap(),
        json!({"type": "new"})
    );

    // A portal session of the customer gets one too.
    let (status, session) = s
        .app
        .post_as(
            s.key(),
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "user_1"}),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let token = session["session"]["token"].as_str().unwrap();
    let (status, body) = s
        .app
        .post_as(token, "/v1/customers/portal/create-setup-intent", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "dodo");
}

#[tokio::test]
async fn the_completed_link_adds_the_card_once_and_the_subscription_moves_to_it() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let ours = s.subscription(&customer_id).await;
    s.deliver(&s.activated("sub_d1", "cus_d1", &ours)).await;
    let (status, _) = s.create_setup_intent(s.key(), "user_1").await;
    assert_eq!(status, 200);

    let delivery = s
        .dodo
        .complete_payment_method_update("sub_d1", "pm_dodo_1", "VISA", "1111", 8, 2032)
        .unwrap();
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], false);

    let (status, overview) = s
        .app
        .get_as(
            s.key(),
            "/v1/customers/portal/overview?externalCustomerId=user_1",
        )
        .await;
    assert_eq!(status, 200, "{overview}");
    let methods = overview["portal"]["paymentMethods"].as_array().unwrap();
    assert_eq!(methods.len(), 1, "{overview}");
    let id = methods[0]["id"].as_str().unwrap();
    assert_eq!(
        methods[0],
        json!({"id": id, "provider": "dodo", "paymentType": "card", "status": "active",
            "cardBrand": "visa", "cardLastFour": "1111", "cardExpiryMonth": 8,
            "cardExpiryYear": 2032, "linkedToSubscription": true})
    );
    let (status, body) = s
        .app
        .get_as(s.key(), &format!("/v1/subscriptions/{ours}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscription"]["paymentMethodId"], id);
    let (reference, actor): (String, String) = sqlx::query_as(
        "SELECT p.provider_reference, e.metadata->>'actor' FROM payment_method_list p \
         JOIN events e ON e.aggregate_id = p.id AND e.sequence = 1 WHERE p.id = $1",
    )
    .bind(id)
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(reference, "pm_dodo_1");
    assert_eq!(actor, format!("webhook:dodo:{}", delivery.id));

    // Redelivered: acknowledged, nothing changes.
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": true}));
    // Another event naming the same method: processed, and still added once.
    let mut data = s.dodo.subscription("sub_d1").unwrap();
    data["payload_type"] = json!("Subscription");
    let again = s.dodo.delivery(
        event_types::SUBSCRIPTION_UPDATED,
        data,
        Utc::now().timestamp(),
    );
    let (status, body) = s.deliver(&again).await;
    assert_eq!(
        (status, body["duplicate"].clone()),
        (200, json!(false)),
        "{body}"
    );
    assert_eq!(s.methods_added().await, 1);
    assert_eq!(s.events_recorded().await, 3);
}

#[tokio::test]
async fn forged_stale_unsigned_and_misaddressed_webhooks_are_refused_and_change_nothing() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let ours = s.subscription(&customer_id).await;
    let delivery = s.activated("sub_d1", "cus_d1", &ours);
    let merchant_id = s.merchant.merchant_id.clone();
    let headers = delivery.headers();

    // The body changed after signing.
    let tampered = delivery.body.replace("sub_d1", "sub_d2");
    assert_error(
        &s.deliver_to(&merchant_id, &tampered, &headers).await,
        400,
        INVALID_SIGNATURE,
    );
    // Signed with another secret.
    let other = StandardWebhookSecret::from_bytes(b"not the merchant's secret".to_vec());
    let forged = other.sign(&delivery.id, delivery.timestamp, delivery.body.as_bytes());
    let forged_headers = [
        headers[0].clone(),
        headers[1].clone(),
        ("webhook-signature", forged),
    ];
    assert_error(
        &s.deliver_to(&merchant_id, &delivery.body, &forged_headers)
            .await,
        400,
        INVALID_SIGNATURE,
    );
    // Another message id than the one signed: the id is part of what is signed.
    let renamed = [
        ("webhook-id", "msg_other".to_owned()),
        headers[1].clone(),
        headers[2].clone(),
    ];
    assert_error(
        &s.deliver_to(&merchant_id, &delivery.body, &renamed).await,
        400,
        INVALID_SIGNATURE,
    );
    // A header missing.
    for missing in 0..3 {
        let partial: Vec<(&str, String)> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != missing)
            .map(|(_, h)| h.clone())
            .collect();
        assert_error(
            &s.deliver_to(&merchant_id, &delivery.body, &partial).await,
            400,
            &format!("Missing {} header", headers[missing].0),
        );
    }
    // Properly signed more than five minutes away from now.
    let now = Utc::now().timestamp();
    // A minute past the tolerance each way: a second passing between signing and checking must
    // not bring the future one back inside it.
    for at in [now - 360, now + 360] {
        let old = s.dodo.sign(delivery.id.clone(), delivery.body.clone(), at);
        assert_error(&s.deliver(&old).await, 400, STALE);
    }
    // Sent to a merchant that does not exist or does not use Dodo.
    for (target, message) in [
        ("merchant_nope", "Unknown merchant"),
        (
            s.app.merchant.merchant_id.as_str(),
            "Dodo webhooks are not configured for this merchant",
        ),
    ] {
        assert_error(
            &s.deliver_to(target, &delivery.body, &headers).await,
            400,
            message,
        );
    }
    // Signed, but not a Dodo event.
    let junk = s.dodo.sign("msg_junk".into(), "[1, 2]".into(), now);
    assert_error(&s.deliver(&junk).await, 400, "Invalid webhook payload");

    assert_eq!(s.links().await, 0);
    assert_eq!(s.events_recorded().await, 0);
    assert_eq!(s.methods_added().await, 0);

    // The genuine delivery still works.
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.links().await, 1);
}

#[tokio::test]
async fn metadata_naming_another_tenants_subscription_links_nothing() {
    let s = setup().await;
    // The same merchant's live mode, and another merchant: neither is this Dodo account's.
    let (status, body) = s
        .app
        .post_as(
            &s.merchant.live_secret_key,
            "/v1/customers",
            json!({"email": "live@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let live_customer = body["customer"]["id"].as_str().unwrap().to_owned();
    let (status, plan) = s
        .app
        .post_as(
            &s.merchant.live_secret_key,
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD", "pricingData": {"components": []}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let (status, body) = s
        .app
        .post_as(
            &s.merchant.live_secret_key,
            "/v1/subscriptions",
            json!({"customerId": live_customer, "planId": plan["plan"]["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let live_subscription = body["subscription"]["id"].as_str().unwrap().to_owned();

    for ours in [live_subscription.as_str(), "sub_doesnotexist", "not-an-id"] {
        let (status, body) = s
            .deliver(&s.activated(&format!("sub_d_{}", ours.len()), "cus_d", ours))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(s.links().await, 0);

    // And a live-mode key cannot use the test-mode Dodo account.
    let (status, _) = s
        .app
        .post_as(
            &s.merchant.live_secret_key,
            "/v1/customers",
            json!({"email": "live2@example.com", "externalCustomerId": "live_user"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_error(
        &s.create_setup_intent(&s.merchant.live_secret_key, "live_user")
            .await,
        409,
        "This merchant's Dodo account is in test mode; use a test mode key",
    );
}

#[tokio::test]
async fn dodo_failures_are_502s_that_leak_no_key() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let ours = s.subscription(&customer_id).await;
    // Linked to a Dodo subscription that Dodo does not know (any more).
    let mut data = json!({"subscription_id": "sub_unknown_at_dodo", "status": "active",
        "customer": {"customer_id": "cus_x", "email": "x@example.com", "name": "X"},
        "metadata": {"billstream_subscription_id": ours}, "payload_type": "Subscription"});
    let delivery = s.dodo.delivery(
        event_types::SUBSCRIPTION_ACTIVE,
        data.clone(),
        Utc::now().timestamp(),
    );
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    let response = s.create_setup_intent(s.key(), "user_1").await;
    assert_error(
        &response,
        502,
        "Dodo could not create the payment link; try again later",
    );
    assert_eq!(response.1["code"], "provider_error");
    assert!(!response.1.to_string().contains(s.dodo.api_key()));

    // The mandate event arrives but Dodo cannot describe the method: a 502 so Dodo retries,
    // nothing added, the event not used up.
    data["payment_method_id"] = json!("pm_x");
    let mandate = s.dodo.delivery(
        event_types::SUBSCRIPTION_UPDATED,
        data,
        Utc::now().timestamp(),
    );
    let response = s.deliver(&mandate).await;
    assert_error(
        &response,
        502,
        "Dodo could not list the customer's payment methods; try again later",
    );
    assert_eq!(s.methods_added().await, 0);
    assert_eq!(s.events_recorded().await, 1);

    // A merchant whose Dodo key is wrong.
    let wrong = dodo_merchant(&s.app, &s.dodo, "wrong_key_that_must_not_leak").await;
    let (status, body) = s
        .app
        .post_as(
            &wrong.test_secret_key,
            "/v1/customers",
            json!({"email": "w@example.com", "externalCustomerId": "w"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let wrong_customer = body["customer"]["id"].as_str().unwrap().to_owned();
    let (status, plan) = s
        .app
        .post_as(
            &wrong.test_secret_key,
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD", "pricingData": {"components": []}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let (status, body) = s
        .app
        .post_as(
            &wrong.test_secret_key,
            "/v1/subscriptions",
            json!({"customerId": wrong_customer, "planId": plan["plan"]["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let wrong_subscription = body["subscription"]["id"].as_str().unwrap().to_owned();
    s.dodo.add_subscription("sub_w", "cus_w", "active");
    let mut data = s.dodo.subscription("sub_w").unwrap();
    data["metadata"] = json!({"billstream_subscription_id": wrong_subscription});
    data["payload_type"] = json!("Subscription");
    let link = s.dodo.delivery(
        event_types::SUBSCRIPTION_ACTIVE,
        data,
        Utc::now().timestamp(),
    );
    let (status, body) = s
        .deliver_to(&wrong.merchant_id, &link.body, &link.headers())
        .await;
    assert_eq!(status, 200, "{body}");
    let response = s.create_setup_intent(&wrong.test_secret_key, "w").await;
    assert_error(
        &response,
        502,
        "Dodo could not create the payment link; try again later",
    );
    assert!(!response
        .1
        .to_string()
        .contains("wrong_key_that_must_not_leak"));
}

/// Dodo charges its subscriptions itself: its `payment.succeeded` is recorded against the
/// linked subscription's open invoice (paying it, and bringing the subscription back from
/// past due), once however often it is delivered; `payment.failed` records Dodo's message.
#[tokio::test]
async fn dodos_payment_events_settle_the_subscriptions_open_invoice_once() {
    let s = setup().await;
    let customer_id = s.customer("user_pay").await;
    let ours = s.subscription(&customer_id).await;
    let (status, body) = s.deliver(&s.activated("sub_dp", "cus_dp", &ours)).await;
    assert_eq!(status, 200, "{body}");
    // Billed at the start with no card on file: past due, its invoice open.
    let (_, subscription) = s
        .app
        .get_as(s.key(), &format!("/v1/subscriptions/{ours}"))
        .await;
    assert_eq!(subscription["subscription"]["status"], "past_due");

    let payment = |event: &str, id: &str, extra: Value| {
        let mut data = json!({"payload_type": "Payment", "payment_id": id,
            "status": if event == event_types::PAYMENT_SUCCEEDED { "succeeded" } else { "failed" },
            "customer": {"customer_id": "cus_dp", "email": "user_pay@example.com", "name": "U"},
            "subscription_id": "sub_dp", "total_amount": 2900, "currency": "USD"});
        for (key, value) in extra.as_object().unwrap() {
            data[key] = value.clone();
        }
        s.dodo.delivery(event, data, Utc::now().timestamp())
    };
    let failed = payment(
        event_types::PAYMENT_FAILED,
        "pay_dodo_1",
        json!({"error_code": "CARD_DECLINED", "error_message": "Card declined by issuer"}),
    );
    let (status, body) = s.deliver(&failed).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..2 {
        let succeeded = payment(event_types::PAYMENT_SUCCEEDED, "pay_dodo_2", json!({}));
        let (status, body) = s.deliver(&succeeded).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, invoices) = s
        .app
        .get_as(s.key(), &format!("/v1/invoices?customerId={customer_id}"))
        .await;
    let invoice = &invoices["invoices"][0];
    assert_eq!(invoice["status"], "paid", "{invoices}");
    assert_eq!(invoice["amountPaidCents"], 2900, "recorded once");
    let messages: Vec<&str> = invoice["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["errorMessage"].as_str())
        .collect();
    assert!(messages.contains(&"Card declined by issuer"), "{invoice}");
    let (_, subscription) = s
        .app
        .get_as(s.key(), &format!("/v1/subscriptions/{ours}"))
        .await;
    assert_eq!(subscription["subscription"]["status"], "active");
}
