//! A merchant billing through Stripe, against a fake Stripe: `create-setup-intent` makes the
//! Stripe customer once and a SetupIntent for Stripe.js; the card arrives by the signed
//! `setup_intent.succeeded` webhook, is added once per event and payment method, and becomes
//! the customer's default. Forged, stale and replayed deliveries change nothing.

use billstream::merchants::{
    create_merchant_with_providers, NewMerchant, Provider, ProviderSettings, StripeSettings,
};
use billstream_tests::{assert_error, send, TestApp};
use chrono::Utc;
use providers::fakes::{FakeStripe, StripeDelivery};
use providers::stripe_webhook::{self, SETUP_INTENT_SUCCEEDED};
use serde_json::{json, Value};

const PUBLISHABLE_KEY: &str = "pk_test_billstream";
const INVALID_SIGNATURE: &str = "Invalid webhook signature";
const STALE: &str = "Webhook timestamp is outside the 5-minute tolerance";

struct Setup {
    app: TestApp,
    stripe: FakeStripe,
    merchant: NewMerchant,
}

async fn stripe_merchant(app: &TestApp, stripe: &FakeStripe, secret_key: &str) -> NewMerchant {
    let settings = ProviderSettings {
        stripe: StripeSettings {
            secret_key: Some(secret_key.to_owned()),
            publishable_key: Some(PUBLISHABLE_KEY.to_owned()),
            webhook_secret: Some(stripe.webhook_secret().to_owned()),
            base_url: Some(stripe.base_url()),
        },
        ..ProviderSettings::new(Provider::Stripe)
    };
    create_merchant_with_providers(&app.pool, "Stripe merchant", &settings)
        .await
        .expect("stripe merchant")
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let stripe = FakeStripe::start().await;
    let merchant = stripe_merchant(&app, &stripe, stripe.secret_key()).await;
    Setup {
        app,
        stripe,
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
                json!({"email": format!("{external_id}@example.com"), "name": "Jane",
                    "externalCustomerId": external_id}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["customer"]["id"].as_str().unwrap().to_owned()
    }

    async fn create_setup_intent(&self, external_id: &str) -> (u16, Value) {
        self.app
            .post_as(
                self.key(),
                "/v1/customers/portal/create-setup-intent",
                json!({"externalCustomerId": external_id}),
            )
            .await
    }

    /// A setup intent for the customer, completed at Stripe with a new visa card: the
    /// delivery Stripe sends, and the card's id.
    async fn completed_intent(&self, external_id: &str, last4: &str) -> (StripeDelivery, String) {
        let (status, body) = self.create_setup_intent(external_id).await;
        assert_eq!(status, 200, "{body}");
        let intent_id = body["stripe"]["intentId"].as_str().unwrap();
        let stripe_customer = self.stripe.setup_intent(intent_id).unwrap()["customer"]
            .as_str()
            .unwrap()
            .to_owned();
        let pm = format!("pm_card_{last4}_{}", uuid::Uuid::new_v4().simple());
        self.stripe
            .add_card(&pm, &stripe_customer, "visa", last4, 11, 2031);
        let delivery = self.stripe.succeed_setup_intent(intent_id, &pm).unwrap();
        (delivery, pm)
    }

    async fn deliver_to(
        &self,
        merchant_id: &str,
        body: &str,
        signature: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .post(self.app.url(&format!("/v1/webhooks/stripe/{merchant_id}")))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        send(request).await
    }

    async fn deliver(&self, delivery: &StripeDelivery) -> (u16, Value) {
        self.deliver_to(
            &self.merchant.merchant_id,
            &delivery.body,
            Some(&delivery.signature),
        )
        .await
    }

    async fn methods_added(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM payment_method_list WHERE provider = 'stripe'")
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

    async fn overview_methods(&self, external_id: &str) -> Value {
        let (status, body) = self
            .app
            .get_as(
                self.key(),
                &format!("/v1/customers/portal/overview?externalCustomerId={external_id}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["portal"]["paymentMethods"].clone()
    }

    fn requests_to(&self, method: &str, path: &str) -> Vec<providers::fakes::RecordedRequest> {
        self.stripe
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }
}

#[tokio::test]
async fn create_setup_intent_makes_the_stripe_customer_once_and_a_setup_intent_each_time() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;

    let (status, first) = s.create_setup_intent("user_1").await;
    assert_eq!(status, 200, "{first}");
    let intent_id = first["stripe"]["intentId"].as_str().unwrap();
    let client_secret = first["stripe"]["clientSecret"].as_str().unwrap();
    assert!(intent_id.starts_with("seti_"), "{first}");
    assert!(
        client_secret.starts_with(&format!("{intent_id}_secret_")),
        "{first}"
    );
    assert_eq!(
        first,
        json!({"provider": "stripe", "stripe": {"clientSecret": client_secret,
            "intentId": intent_id, "publishableKey": PUBLISHABLE_KEY}})
    );
    let (status, second) = s.create_setup_intent("user_1").await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["stripe"]["intentId"], first["stripe"]["intentId"]);

    let customers = s.requests_to("POST", "/v1/customers");
    assert_eq!(
        customers.len(),
        1,
        "one Stripe customer per billstream customer"
    );
    let form = customers[0].form();
    assert!(
        form.contains(&("email".into(), "user_1@example.com".into())),
        "{form:?}"
    );
    assert!(
        form.contains(&(
            "metadata[billstream_customer_id]".into(),
            customer_id.clone()
        )),
        "{form:?}"
    );
    assert_eq!(s.requests_to("POST", "/v1/setup_intents").len(), 2);

    let intent = s.stripe.setup_intent(intent_id).unwrap();
    assert_eq!(intent["usage"], "off_session");
    assert_eq!(
        intent["metadata"]["billstream_customer_id"],
        customer_id.as_str()
    );
    assert_eq!(
        intent["metadata"]["billstream_tenant"],
        format!("{}:test", s.merchant.merchant_id)
    );
    let remembered: String = sqlx::query_scalar(
        "SELECT provider_customer_id FROM provider_customers WHERE customer_id = $1",
    )
    .bind(&customer_id)
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(intent["customer"], remembered.as_str());
}

#[tokio::test]
async fn the_card_arrives_by_webhook_and_shows_in_the_overview() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let (delivery, pm) = s.completed_intent("user_1", "4242").await;

    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": false}));

    let methods = s.overview_methods("user_1").await;
    let methods = methods.as_array().unwrap();
    assert_eq!(methods.len(), 1, "{methods:?}");
    let id = methods[0]["id"].as_str().unwrap();
    assert!(
        id.starts_with("pm_") && id != pm,
        "billstream's own id: {id}"
    );
    assert_eq!(
        methods[0],
        json!({"id": id, "provider": "stripe", "paymentType": "card", "status": "active",
            "cardBrand": "visa", "cardLastFour": "4242", "cardExpiryMonth": 11,
            "cardExpiryYear": 2031, "linkedToSubscription": false})
    );
    let (owner, reference): (String, String) = sqlx::query_as(
        "SELECT customer_id, provider_reference FROM payment_method_list WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!((owner, reference), (customer_id, pm.clone()));
    let retrieved = s.requests_to("GET", &format!("/v1/payment_methods/{pm}"));
    assert_eq!(retrieved.len(), 1);

    // The event names the delivery that caused it.
    let actor: String = sqlx::query_scalar(
        "SELECT metadata->>'actor' FROM events WHERE aggregate_id = $1 AND sequence = 1",
    )
    .bind(id)
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, format!("webhook:stripe:{}", delivery.event_id));
}

#[tokio::test]
async fn each_event_is_processed_once_and_each_stripe_card_added_once() {
    let s = setup().await;
    s.customer("user_1").await;
    let (delivery, pm) = s.completed_intent("user_1", "4242").await;
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(
        (status, body["duplicate"].clone()),
        (200, json!(false)),
        "{body}"
    );

    // Stripe redelivers the same event: acknowledged, nothing done, Stripe not asked again.
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": true, "duplicate": true}));
    assert_eq!(s.methods_added().await, 1);
    assert_eq!(
        s.requests_to("GET", &format!("/v1/payment_methods/{pm}"))
            .len(),
        1
    );

    // Another event about the same card is processed, and still adds it once.
    let intent = s
        .stripe
        .setup_intent(delivery_intent_id(&delivery).as_str())
        .unwrap();
    let another = s
        .stripe
        .event_delivery(SETUP_INTENT_SUCCEEDED, intent, Utc::now().timestamp());
    let (status, body) = s.deliver(&another).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], false);
    assert_eq!(s.methods_added().await, 1);
    assert_eq!(s.events_recorded().await, 2);

    // Deliveries racing each other add it once too.
    let (delivery, _) = s.completed_intent("user_1", "1881").await;
    let racers = (0..6).map(|_| s.deliver(&delivery));
    for (status, body) in futures::future::join_all(racers).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(s.methods_added().await, 2);
}

fn delivery_intent_id(delivery: &StripeDelivery) -> String {
    let body: Value = serde_json::from_str(&delivery.body).unwrap();
    body["data"]["object"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn forged_stale_unsigned_and_misaddressed_webhooks_are_refused_and_change_nothing() {
    let s = setup().await;
    s.customer("user_1").await;
    let (delivery, _) = s.completed_intent("user_1", "4242").await;
    let merchant_id = s.merchant.merchant_id.clone();
    let now = Utc::now().timestamp();

    // The body changed after signing.
    assert!(delivery.body.contains("\"livemode\":false"));
    let tampered = delivery
        .body
        .replace("\"livemode\":false", "\"livemode\":true");
    assert_error(
        &s.deliver_to(&merchant_id, &tampered, Some(&delivery.signature))
            .await,
        400,
        INVALID_SIGNATURE,
    );
    // Signed with a secret that is not the merchant's.
    let forged = stripe_webhook::sign("whsec_not_the_merchants", now, delivery.body.as_bytes());
    assert_error(
        &s.deliver_to(&merchant_id, &delivery.body, Some(&forged))
            .await,
        400,
        INVALID_SIGNATURE,
    );
    for garbage in ["", "t=abc", "v1=00", "t=1,v1=zz", "nonsense"] {
        assert_error(
            &s.deliver_to(&merchant_id, &delivery.body, Some(garbage))
                .await,
            400,
            INVALID_SIGNATURE,
        );
    }
    assert_error(
        &s.deliver_to(&merchant_id, &delivery.body, None).await,
        400,
        "Missing Stripe-Signature header",
    );
    // Properly signed, but more than five minutes ago (a captured delivery replayed), or
    // from too far in the future.
    let object: Value =
        serde_json::from_str::<Value>(&delivery.body).unwrap()["data"]["object"].clone();
    // A minute past the tolerance each way: a second passing between signing and checking must
    // not bring the future one back inside it.
    for at in [now - 360, now + 360] {
        let old = s
            .stripe
            .event_delivery(SETUP_INTENT_SUCCEEDED, object.clone(), at);
        assert_error(&s.deliver(&old).await, 400, STALE);
    }
    // Correctly signed, sent to a merchant that does not exist or does not use Stripe.
    for (target, message) in [
        ("merchant_nope", "Unknown merchant"),
        (
            s.app.merchant.merchant_id.as_str(),
            "Stripe webhooks are not configured for this merchant",
        ),
    ] {
        assert_error(
            &s.deliver_to(target, &delivery.body, Some(&delivery.signature))
                .await,
            400,
            message,
        );
    }
    // Signed, but not a Stripe event.
    let not_an_event = s.stripe.sign("evt_x".into(), "{\"hello\": 1}".into(), now);
    assert_error(
        &s.deliver(&not_an_event).await,
        400,
        "Invalid webhook payload",
    );

    assert_eq!(s.methods_added().await, 0);
    assert_eq!(s.events_recorded().await, 0);
    let retrieved = s
        .stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(retrieved, 0, "a refused delivery asks Stripe nothing");

    // The genuine delivery is still processed: none of the refusals used its event id up.
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["duplicate"], false);
    assert_eq!(s.methods_added().await, 1);
}

#[tokio::test]
async fn a_live_event_cannot_add_a_card_to_a_test_customer() {
    let s = setup().await;
    s.customer("user_1").await;
    let (delivery, _) = s.completed_intent("user_1", "4242").await;
    let mut body: Value = serde_json::from_str(&delivery.body).unwrap();
    body["livemode"] = json!(true);
    body["id"] = json!("evt_live_1");
    let live = s.stripe.sign(
        "evt_live_1".into(),
        body.to_string(),
        Utc::now().timestamp(),
    );
    let (status, response) = s.deliver(&live).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(s.methods_added().await, 0);
}

#[tokio::test]
async fn events_about_other_setup_intents_are_acknowledged_and_ignored() {
    let s = setup().await;
    let now = Utc::now().timestamp();
    // A setup intent the merchant made itself, without billstream's metadata.
    s.stripe
        .add_card("pm_own", "cus_own", "visa", "4242", 1, 2032);
    let object = json!({"id": "seti_own", "object": "setup_intent", "customer": "cus_own",
        "payment_method": "pm_own", "status": "succeeded", "metadata": {}});
    let own = s.stripe.event_delivery(SETUP_INTENT_SUCCEEDED, object, now);
    let (status, body) = s.deliver(&own).await;
    assert_eq!(
        (status, body["received"].clone()),
        (200, json!(true)),
        "{body}"
    );
    // An event type billstream does not act on.
    let other = s.stripe.event_delivery(
        "customer.created",
        json!({"id": "cus_1", "object": "customer"}),
        now,
    );
    let (status, body) = s.deliver(&other).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.methods_added().await, 0);
    assert_eq!(s.events_recorded().await, 2);
}

#[tokio::test]
async fn the_live_subscription_moves_to_the_new_stripe_card() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    let (status, plan) = s
        .app
        .post_as(
            s.key(),
            "/v1/plans",
            json!({"name": "Pro", "currency": "USD",
                "pricingData": {"components": [{"type": "flat", "amountCents": 2900}]}}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let (status, subscription) = s
        .app
        .post_as(
            s.key(),
            "/v1/subscriptions",
            json!({"customerId": customer_id, "planId": plan["plan"]["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{subscription}");
    let subscription_id = subscription["subscription"]["id"].as_str().unwrap();

    let (delivery, _) = s.completed_intent("user_1", "4242").await;
    let (status, body) = s.deliver(&delivery).await;
    assert_eq!(status, 200, "{body}");
    let methods = s.overview_methods("user_1").await;
    assert_eq!(methods[0]["linkedToSubscription"], true, "{methods}");
    let (status, body) = s
        .app
        .get_as(s.key(), &format!("/v1/subscriptions/{subscription_id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscription"]["paymentMethodId"], methods[0]["id"]);
}

#[tokio::test]
async fn stripe_failures_are_502s_that_leak_no_secret() {
    let app = TestApp::spawn().await;
    let stripe = FakeStripe::start().await;
    // The merchant's key is wrong: Stripe answers 401.
    let wrong_key = "sk_test_wrong_key_that_must_not_leak";
    let merchant = stripe_merchant(&app, &stripe, wrong_key).await;
    let key = merchant.test_secret_key.clone();
    let (status, body) = app
        .post_as(
            &key,
            "/v1/customers",
            json!({"email": "jane@example.com", "externalCustomerId": "user_1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let response = app
        .post_as(
            &key,
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "user_1"}),
        )
        .await;
    assert_error(
        &response,
        502,
        "Stripe could not create the customer; try again later",
    );
    assert_eq!(response.1["code"], "provider_error");
    let text = response.1.to_string();
    assert!(
        !text.contains(wrong_key) && !text.contains("Invalid API Key"),
        "{text}"
    );
    assert_eq!(stripe.requests().len(), 1);
    let remembered: i64 = sqlx::query_scalar("SELECT count(*) FROM provider_customers")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(remembered, 0);

    // Stripe cannot be reached at all.
    drop(stripe);
    let unreachable = FakeStripe::start().await;
    let base = unreachable.base_url();
    drop(unreachable);
    let settings = ProviderSettings {
        stripe: StripeSettings {
            secret_key: Some("sk_test_x".into()),
            publishable_key: Some(PUBLISHABLE_KEY.into()),
            webhook_secret: Some("whsec_x".into()),
            base_url: Some(base),
        },
        ..ProviderSettings::new(Provider::Stripe)
    };
    let merchant = create_merchant_with_providers(&app.pool, "Offline", &settings)
        .await
        .unwrap();
    let key = merchant.test_secret_key;
    app.post_as(
        &key,
        "/v1/customers",
        json!({"email": "jane@example.com", "externalCustomerId": "user_1"}),
    )
    .await;
    assert_error(
        &app.post_as(
            &key,
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "user_1"}),
        )
        .await,
        502,
        "Stripe could not create the customer; try again later",
    );
}

#[tokio::test]
async fn a_stripe_customer_deleted_at_stripe_is_made_again() {
    let s = setup().await;
    let customer_id = s.customer("user_1").await;
    sqlx::query(
        "INSERT INTO provider_customers (tenant, customer_id, provider, provider_customer_id) \
         VALUES ($1, $2, 'stripe', 'cus_deleted_in_the_dashboard')",
    )
    .bind(format!("{}:test", s.merchant.merchant_id))
    .bind(&customer_id)
    .execute(&s.app.pool)
    .await
    .unwrap();
    let (status, body) = s.create_setup_intent("user_1").await;
    assert_eq!(status, 200, "{body}");
    let remembered: String = sqlx::query_scalar(
        "SELECT provider_customer_id FROM provider_customers WHERE customer_id = $1",
    )
    .bind(&customer_id)
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_ne!(remembered, "cus_deleted_in_the_dashboard");
    let intent = s
        .stripe
        .setup_intent(body["stripe"]["intentId"].as_str().unwrap())
        .unwrap();
    assert_eq!(intent["customer"], remembered.as_str());
}

#[tokio::test]
async fn a_live_key_cannot_use_a_test_mode_stripe_account() {
    let s = setup().await;
    let live = s.merchant.live_secret_key.clone();
    let (status, body) = s
        .app
        .post_as(
            &live,
            "/v1/customers",
            json!({"email": "jane@example.com", "externalCustomerId": "user_1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let response = s
        .app
        .post_as(
            &live,
            "/v1/customers/portal/create-setup-intent",
            json!({"externalCustomerId": "user_1"}),
        )
        .await;
    assert_error(
        &response,
        409,
        "This merchant's Stripe account is in test mode; use a test mode key",
    );
    assert!(s.stripe.requests().is_empty());
}

#[tokio::test]
async fn a_portal_session_gets_a_setup_intent_for_its_own_customer() {
    let s = setup().await;
    s.customer("me").await;
    s.customer("them").await;
    let (status, body) = s
        .app
        .post_as(
            s.key(),
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": "me"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    let (status, body) = s
        .app
        .post_as(
            &token,
            "/v1/customers/portal/create-setup-intent",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["provider"], "stripe");
    assert_error(
        &s.app
            .post_as(
                &token,
                "/v1/customers/portal/create-setup-intent",
                json!({"externalCustomerId": "them"}),
            )
            .await,
        404,
        "Customer not found or access denied",
    );
}
