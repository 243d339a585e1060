//! The `PaymentGateway` port: the sandbox as is, Stripe and Dodo against their fakes over real
//! HTTP.

use std::collections::BTreeMap;

use chrono::{Datelike, Utc};
use providers::dodo_webhook::event_types;
use providers::fakes::{DodoDelivery, FakeDodo, FakeStripe};
use providers::sandbox::{CHARGE_DECLINED_CARD_NUMBER, INSUFFICIENT_FUNDS_CARD_NUMBER};
use providers::stripe_webhook::SETUP_INTENT_SUCCEEDED;
use providers::{
    Charge, ChargeRequest, ChargeStatus, CollectedCard, CollectedMethod, CustomerDetails, Delivery,
    DodoClient, DodoGateway, EventMeaning, GatewayError, Interpreted, PaymentGateway, Refund,
    RefundRequest, SandboxCard, SandboxGateway, SetupIntent, SetupIntentRequest,
    StandardWebhookSecret, StripeClient, StripeGateway,
};
use reqwest::header::HeaderMap;
use serde_json::json;

const RETURN_URL: &str = "https://merchant.example.com/billing";

fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn setup_request<'a>(
    provider_customer: Option<&'a str>,
    provider_subscription: Option<&'a str>,
    metadata: &'a [(&'a str, &'a str)],
) -> SetupIntentRequest<'a> {
    SetupIntentRequest {
        provider_customer,
        provider_subscription,
        metadata,
        return_url: Some(RETURN_URL),
    }
}

fn charge_request<'a>(
    payment_id: &'a str,
    provider_customer: Option<&'a str>,
    payment_method: &'a str,
    provider_subscription: Option<&'a str>,
) -> ChargeRequest<'a> {
    ChargeRequest {
        payment_id,
        amount_cents: 2500,
        currency: "USD",
        provider_customer,
        payment_method,
        provider_subscription,
        description: Some("Pro plan, March"),
    }
}

fn refund_request<'a>(
    refund_id: &'a str,
    provider_payment_id: &'a str,
    amount_cents: i64,
) -> RefundRequest<'a> {
    RefundRequest {
        refund_id,
        provider_payment_id,
        amount_cents,
        currency: "USD",
    }
}

fn failed_action(error: GatewayError) -> &'static str {
    match error {
        GatewayError::Failed { action, .. } => action,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn refusal(error: GatewayError) -> (&'static str, String) {
    match error {
        GatewayError::Refused { code, message } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn declined(code: &str, message: &str) -> GatewayError {
    GatewayError::Declined {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The port itself

#[tokio::test]
async fn every_gateway_serves_behind_the_one_trait() {
    let stripe = FakeStripe::start().await;
    let dodo = FakeDodo::start().await;
    let gateways: Vec<Box<dyn PaymentGateway>> = vec![
        Box::new(SandboxGateway),
        Box::new(stripe_gateway(&stripe)),
        Box::new(dodo_gateway(&dodo)),
    ];
    let names: Vec<&str> = gateways.iter().map(|g| g.name()).collect();
    assert_eq!(names, ["sandbox", "stripe", "dodo"]);
    let modes: Vec<Option<bool>> = gateways.iter().map(|g| g.serves_live()).collect();
    assert_eq!(modes, [None, Some(false), Some(false)]);
}

// ---------------------------------------------------------------------------------------------
// Sandbox

#[tokio::test]
async fn the_sandbox_keeps_no_customer_and_confirms_intents_itself() {
    let customer = CustomerDetails {
        id: "cust_1",
        email: "jane@example.com",
        name: None,
        metadata: &[],
    };
    assert_eq!(
        SandboxGateway.create_customer(&customer, None).await,
        Ok(None)
    );
    assert_eq!(
        SandboxGateway
            .create_setup_intent(&setup_request(None, None, &[]))
            .await,
        Ok(SetupIntent::Local)
    );
}

#[tokio::test]
async fn the_sandbox_charges_by_the_cards_last_four_digits() {
    let charged = SandboxGateway
        .charge(&charge_request("pay_1", None, "4242", None))
        .await;
    assert_eq!(
        charged,
        Ok(Charge {
            provider_payment_id: "sandbox_pay_pay_1".into(),
            status: ChargeStatus::Succeeded,
        })
    );

    // The test cards are accepted when added; only their charges fail.
    let now = Utc::now();
    let next_year = now.year() + 1;
    let declining = SandboxCard::parse(CHARGE_DECLINED_CARD_NUMBER, 12, next_year, now).unwrap();
    assert_eq!(
        SandboxGateway
            .charge(&charge_request("pay_2", None, &declining.last_four, None))
            .await,
        Err(declined("card_declined", "Your card was declined."))
    );
    let poor = SandboxCard::parse(INSUFFICIENT_FUNDS_CARD_NUMBER, 12, next_year, now).unwrap();
    assert_eq!(
        SandboxGateway
            .charge(&charge_request("pay_3", None, &poor.last_four, None))
            .await,
        Err(declined(
            "insufficient_funds",
            "Your card has insufficient funds."
        ))
    );
}

#[tokio::test]
async fn the_sandbox_refunds_at_once_and_has_no_webhooks() {
    assert_eq!(
        SandboxGateway
            .refund(&refund_request("re_1", "sandbox_pay_pay_1", 500))
            .await,
        Ok(Refund {
            provider_refund_id: "sandbox_re_re_1".into(),
            status: ChargeStatus::Succeeded,
        })
    );
    assert!(matches!(
        SandboxGateway.describe_payment_method("4242", None).await,
        Err(GatewayError::Unsupported(_))
    ));
    assert_eq!(
        SandboxGateway.verify_delivery(&HeaderMap::new(), b"{}", Utc::now()),
        Err(GatewayError::NotConfigured("Sandbox webhooks"))
    );
    assert_eq!(
        SandboxGateway.interpret(b"{}"),
        Err(GatewayError::NotConfigured("Sandbox webhooks"))
    );
}

// ---------------------------------------------------------------------------------------------
// Stripe

fn stripe_gateway(fake: &FakeStripe) -> StripeGateway {
    StripeGateway::new(
        StripeClient::new(fake.base_url(), fake.secret_key()),
        fake.secret_key(),
        Some("pk_test_publishable".into()),
        Some(fake.webhook_secret().to_owned()),
    )
}

async fn stripe_customer(gateway: &StripeGateway) -> String {
    let customer = CustomerDetails {
        id: "cust_1",
        email: "jane@example.com",
        name: Some("Jane Doe"),
        metadata: &[("billstream_customer_id", "cust_1")],
    };
    gateway
        .create_customer(&customer, Some("billstream-customer-cust_1"))
        .await
        .unwrap()
        .expect("Stripe keeps a customer")
}

fn stripe_headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("stripe-signature", signature.parse().unwrap());
    headers
}

#[test]
fn stripe_serves_the_mode_of_its_secret_key() {
    let gateway = |key: &str| {
        StripeGateway::new(
            StripeClient::new("http://127.0.0.1:9", key),
            key,
            None,
            None,
        )
    };
    assert_eq!(gateway("sk_test_1").serves_live(), Some(false));
    assert_eq!(gateway("rk_live_1").serves_live(), Some(true));
    assert_eq!(gateway("not_a_stripe_key").serves_live(), None);
}

#[tokio::test]
async fn stripe_makes_a_customer_then_a_setup_intent_for_stripe_js() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let customer = stripe_customer(&gateway).await;
    assert!(customer.starts_with("cus_"), "{customer}");
    let created = &fake.requests()[0];
    assert_eq!(
        created.header("idempotency-key"),
        Some("billstream-customer-cust_1")
    );
    assert_eq!(created.form_value("name").as_deref(), Some("Jane Doe"));

    let intent = gateway
        .create_setup_intent(&setup_request(
            Some(&customer),
            None,
            &[("billstream_customer_id", "cust_1")],
        ))
        .await
        .unwrap();
    let SetupIntent::Stripe {
        intent_id,
        client_secret,
        publishable_key,
    } = intent
    else {
        panic!("expected a Stripe intent, got {intent:?}");
    };
    assert!(intent_id.starts_with("seti_"), "{intent_id}");
    assert!(
        client_secret.starts_with(&format!("{intent_id}_secret_")),
        "{client_secret}"
    );
    assert_eq!(publishable_key.as_deref(), Some("pk_test_publishable"));
    let stored = fake.setup_intent(&intent_id).unwrap();
    assert_eq!(stored["customer"], customer.as_str());
    assert_eq!(stored["metadata"]["billstream_customer_id"], "cust_1");
}

#[tokio::test]
async fn a_setup_intent_for_a_customer_stripe_lost_says_the_customer_is_missing() {
    let fake = FakeStripe::start().await;
    let error = stripe_gateway(&fake)
        .create_setup_intent(&setup_request(Some("cus_deleted"), None, &[]))
        .await
        .unwrap_err();
    assert_eq!(error, GatewayError::CustomerMissing);
}

#[tokio::test]
async fn a_stripe_setup_intent_needs_a_stripe_customer() {
    let fake = FakeStripe::start().await;
    let error = stripe_gateway(&fake)
        .create_setup_intent(&setup_request(None, None, &[]))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        GatewayError::Failed {
            action: "create the setup intent",
            detail: "no Stripe customer".into(),
        }
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn stripe_charges_a_saved_card_off_session_keyed_by_our_payment_id() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let customer = stripe_customer(&gateway).await;
    fake.add_card("pm_saved", &customer, "visa", "4242", 12, 2030);

    let charge = gateway
        .charge(&charge_request(
            "pay_local_1",
            Some(&customer),
            "pm_saved",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(charge.status, ChargeStatus::Succeeded);
    assert!(charge.provider_payment_id.starts_with("pi_"), "{charge:?}");

    let request = fake.requests().pop().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/payment_intents")
    );
    assert_eq!(request.header("idempotency-key"), Some("pay_local_1"));
    let form: BTreeMap<String, String> = request.form().into_iter().collect();
    let expected = metadata(&[
        ("amount", "2500"),
        ("currency", "usd"),
        ("customer", &customer),
        ("payment_method", "pm_saved"),
        ("confirm", "true"),
        ("off_session", "true"),
        ("description", "Pro plan, March"),
        ("metadata[billstream_payment_id]", "pay_local_1"),
    ]);
    assert_eq!(form, expected);
    let stored = fake.payment_intents();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], charge.provider_payment_id.as_str());
    assert_eq!(stored[0]["status"], "succeeded");
}

#[tokio::test]
async fn a_charge_retried_with_the_same_payment_id_charges_once() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let customer = stripe_customer(&gateway).await;
    let request = charge_request("pay_retry", Some(&customer), "pm_card_visa", None);

    let first = gateway.charge(&request).await.unwrap();
    let second = gateway.charge(&request).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(fake.payment_intents().len(), 1);

    let other = gateway
        .charge(&charge_request(
            "pay_other",
            Some(&customer),
            "pm_card_visa",
            None,
        ))
        .await
        .unwrap();
    assert_ne!(other.provider_payment_id, first.provider_payment_id);
    assert_eq!(fake.payment_intents().len(), 2);
}

#[tokio::test]
async fn stripe_declines_say_the_issuers_reason() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let customer = stripe_customer(&gateway).await;
    fake.add_card("pm_fails", &customer, "visa", "0341", 12, 2030);

    let cases = [
        (
            "pm_card_chargeDeclined",
            declined("card_declined", "Your card was declined."),
        ),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            declined("insufficient_funds", "Your card has insufficient funds."),
        ),
        (
            "pm_card_chargeDeclinedExpiredCard",
            declined("expired_card", "Your card has expired."),
        ),
        (
            "pm_fails",
            declined("card_declined", "Your card was declined."),
        ),
    ];
    for (i, (method, expected)) in cases.into_iter().enumerate() {
        let payment_id = format!("pay_declined_{i}");
        let request = charge_request(&payment_id, Some(&customer), method, None);
        assert_eq!(
            gateway.charge(&request).await,
            Err(expected.clone()),
            "{method}"
        );
        // Stripe answers a retry with the same decline, and no second attempt is made.
        assert_eq!(gateway.charge(&request).await, Err(expected), "{method}");
        assert_eq!(fake.payment_intents().len(), i + 1);
    }
    let last = fake.requests().pop().unwrap();
    assert_eq!(last.header("idempotency-key"), Some("pay_declined_3"));
    assert!(fake
        .payment_intents()
        .iter()
        .all(|i| i["status"] == "requires_payment_method"));
}

#[tokio::test]
async fn a_charge_waiting_for_authentication_fails_as_authentication_required() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let customer = stripe_customer(&gateway).await;
    let request = charge_request(
        "pay_needs_3ds",
        Some(&customer),
        "pm_card_authenticationRequired",
        None,
    );
    let expected = declined("authentication_required", "Authentication required");
    assert_eq!(gateway.charge(&request).await, Err(expected.clone()));
    // Asked again (the scheduler settling a pending charge), the same answer, one intent.
    assert_eq!(gateway.charge(&request).await, Err(expected));
    let intents = fake.payment_intents();
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["status"], "requires_action");
}

#[tokio::test]
async fn a_charge_of_a_customer_stripe_lost_says_the_customer_is_missing() {
    let fake = FakeStripe::start().await;
    let error = stripe_gateway(&fake)
        .charge(&charge_request(
            "pay_1",
            Some("cus_deleted"),
            "pm_card_visa",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(error, GatewayError::CustomerMissing);
    assert!(fake.payment_intents().is_empty());
}

#[tokio::test]
async fn a_charge_of_an_unknown_payment_method_fails() {
    let fake = FakeStripe::start().await;
    let error = stripe_gateway(&fake)
        .charge(&charge_request("pay_1", None, "pm_unknown", None))
        .await
        .unwrap_err();
    assert_eq!(failed_action(error), "charge the payment method");
}

#[tokio::test]
async fn stripe_refunds_part_of_a_charge_once_per_refund_id() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let charge = gateway
        .charge(&charge_request("pay_1", None, "pm_card_visa", None))
        .await
        .unwrap();

    let request = refund_request("refund_local_1", &charge.provider_payment_id, 500);
    let refund = gateway.refund(&request).await.unwrap();
    assert_eq!(refund.status, ChargeStatus::Succeeded);
    assert!(refund.provider_refund_id.starts_with("re_"), "{refund:?}");
    assert_eq!(gateway.refund(&request).await.unwrap(), refund);
    assert_eq!(fake.refunds().len(), 1);
    assert_eq!(fake.refunds()[0]["amount"], 500);

    let sent = fake.requests().pop().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/refunds")
    );
    assert_eq!(sent.header("idempotency-key"), Some("refund_local_1"));
    assert_eq!(
        sent.form_value("payment_intent").as_deref(),
        Some(charge.provider_payment_id.as_str())
    );
    assert_eq!(sent.form_value("amount").as_deref(), Some("500"));
    assert_eq!(
        sent.form_value("metadata[billstream_refund_id]").as_deref(),
        Some("refund_local_1")
    );

    // 2000 of the 2500 are left: more is refused.
    let error = gateway
        .refund(&refund_request(
            "refund_local_2",
            &charge.provider_payment_id,
            2001,
        ))
        .await
        .unwrap_err();
    assert_eq!(failed_action(error), "refund the payment");
    assert_eq!(fake.refunds().len(), 1);
}

#[tokio::test]
async fn stripe_describes_a_card() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    fake.add_card("pm_described", "cus_1", "mastercard", "4444", 7, 2031);
    assert_eq!(
        gateway
            .describe_payment_method("pm_described", Some("cus_1"))
            .await,
        Ok(CollectedMethod {
            reference: "pm_described".into(),
            payment_type: "card".into(),
            card: Some(CollectedCard {
                brand: "mastercard".into(),
                last_four: "4444".into(),
                exp_month: 7,
                exp_year: 2031,
            }),
        })
    );
    let error = gateway
        .describe_payment_method("pm_unknown", None)
        .await
        .unwrap_err();
    assert_eq!(failed_action(error), "return the payment method");
}

#[tokio::test]
async fn a_signed_setup_intent_succeeded_is_verified_and_names_the_card() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let customer = stripe_customer(&gateway).await;
    let SetupIntent::Stripe { intent_id, .. } = gateway
        .create_setup_intent(&setup_request(
            Some(&customer),
            None,
            &[
                ("billstream_customer_id", "cust_1"),
                ("billstream_tenant", "m_1:test"),
            ],
        ))
        .await
        .unwrap()
    else {
        panic!("expected a Stripe intent");
    };
    fake.add_card("pm_new", &customer, "visa", "4242", 12, 2030);
    let delivery = fake.succeed_setup_intent(&intent_id, "pm_new").unwrap();

    let verified = gateway
        .verify_delivery(
            &stripe_headers(&delivery.signature),
            delivery.body.as_bytes(),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(
        verified,
        Delivery {
            id: delivery.event_id.clone(),
            livemode: Some(false),
        }
    );
    assert_eq!(
        gateway.interpret(delivery.body.as_bytes()),
        Ok(Interpreted {
            event_type: SETUP_INTENT_SUCCEEDED.into(),
            meaning: EventMeaning::PaymentMethodCollected {
                payment_method: "pm_new".into(),
                metadata: metadata(&[
                    ("billstream_customer_id", "cust_1"),
                    ("billstream_tenant", "m_1:test"),
                ]),
            },
        })
    );
}

#[tokio::test]
async fn forged_stale_and_unsigned_stripe_deliveries_are_refused() {
    let fake = FakeStripe::start().await;
    let gateway = stripe_gateway(&fake);
    let now = Utc::now();
    let delivery = fake.event_delivery("customer.created", json!({"id": "cus_1"}), now.timestamp());

    let forged = delivery.body.replace("cus_1", "cus_2");
    assert_eq!(
        refusal(
            gateway
                .verify_delivery(&stripe_headers(&delivery.signature), forged.as_bytes(), now)
                .unwrap_err()
        ),
        ("invalid_signature", "Invalid webhook signature".into())
    );
    assert_eq!(
        refusal(
            gateway
                .verify_delivery(&HeaderMap::new(), delivery.body.as_bytes(), now)
                .unwrap_err()
        ),
        (
            "missing_signature",
            "Missing Stripe-Signature header".into()
        )
    );
    let stale = fake.event_delivery(
        "customer.created",
        json!({"id": "cus_1"}),
        now.timestamp() - 301,
    );
    assert_eq!(
        refusal(
            gateway
                .verify_delivery(
                    &stripe_headers(&stale.signature),
                    stale.body.as_bytes(),
                    now
                )
                .unwrap_err()
        ),
        (
            "stale_webhook",
            "Webhook timestamp is outside the 5-minute tolerance".into()
        )
    );

    // A good delivery of an event billstream does not act on.
    assert!(gateway
        .verify_delivery(
            &stripe_headers(&delivery.signature),
            delivery.body.as_bytes(),
            now
        )
        .is_ok());
    assert_eq!(
        gateway.interpret(delivery.body.as_bytes()),
        Ok(Interpreted {
            event_type: "customer.created".into(),
            meaning: EventMeaning::Other,
        })
    );
    assert_eq!(
        refusal(gateway.interpret(b"{\"not\": \"an event\"}").unwrap_err()),
        ("invalid_payload", "Invalid webhook payload".into())
    );

    let unsigned = StripeGateway::new(
        StripeClient::new(fake.base_url(), fake.secret_key()),
        fake.secret_key(),
        None,
        None,
    );
    assert_eq!(
        unsigned.verify_delivery(
            &stripe_headers(&delivery.signature),
            delivery.body.as_bytes(),
            now
        ),
        Err(GatewayError::NotConfigured("Stripe"))
    );
}

// ---------------------------------------------------------------------------------------------
// Dodo

fn dodo_gateway(fake: &FakeDodo) -> DodoGateway {
    DodoGateway::new(
        DodoClient::new(fake.base_url(), fake.api_key()),
        Some(StandardWebhookSecret::parse(&fake.webhook_secret()).unwrap()),
        false,
    )
}

fn dodo_headers(delivery: &DodoDelivery) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in delivery.headers() {
        headers.insert(name, value.parse().unwrap());
    }
    headers
}

#[tokio::test]
async fn dodo_keeps_no_customer_of_ours_and_serves_its_configured_mode() {
    let fake = FakeDodo::start().await;
    let customer = CustomerDetails {
        id: "cust_1",
        email: "jane@example.com",
        name: Some("Jane"),
        metadata: &[],
    };
    assert_eq!(
        dodo_gateway(&fake).create_customer(&customer, None).await,
        Ok(None)
    );
    assert!(fake.requests().is_empty());
    let live = DodoGateway::new(DodoClient::new(fake.base_url(), fake.api_key()), None, true);
    assert_eq!(live.serves_live(), Some(true));
}

#[tokio::test]
async fn a_dodo_setup_intent_is_the_subscriptions_hosted_payment_link() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let intent = dodo_gateway(&fake)
        .create_setup_intent(&setup_request(None, Some("sub_dodo"), &[]))
        .await
        .unwrap();
    let SetupIntent::HostedLink { url } = intent else {
        panic!("expected a hosted link, got {intent:?}");
    };
    assert!(
        url.starts_with(&format!("{}/checkout/pay_", fake.base_url())),
        "{url}"
    );
    let request = &fake.requests()[0];
    assert_eq!(
        request.path,
        "/subscriptions/sub_dodo/update-payment-method"
    );
    assert_eq!(
        request.json(),
        Some(json!({"type": "new", "return_url": RETURN_URL}))
    );
}

#[tokio::test]
async fn a_dodo_setup_intent_needs_a_subscription() {
    let fake = FakeDodo::start().await;
    assert_eq!(
        dodo_gateway(&fake)
            .create_setup_intent(&setup_request(Some("cus_dodo"), None, &[]))
            .await,
        Err(GatewayError::NeedsSubscription)
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_dodo_setup_intent_for_a_cancelled_subscription_fails() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "cancelled");
    let error = dodo_gateway(&fake)
        .create_setup_intent(&setup_request(None, Some("sub_dodo"), &[]))
        .await
        .unwrap_err();
    assert_eq!(failed_action(error), "create the payment link");
}

#[tokio::test]
async fn dodo_charges_the_subscription_on_demand_and_settles_by_webhook() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let gateway = dodo_gateway(&fake);
    let request = charge_request("pay_local_1", None, "pm_ignored", Some("sub_dodo"));

    let charge = gateway.charge(&request).await.unwrap();
    assert_eq!(charge.status, ChargeStatus::Pending);
    assert!(charge.provider_payment_id.starts_with("pay_"), "{charge:?}");
    let sent = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(sent.path, "/subscriptions/sub_dodo/charge");
    assert_eq!(
        sent.json(),
        Some(json!({
            "product_price": 2500,
            "product_currency": "USD",
            "product_description": "Pro plan, March",
            "metadata": {"billstream_payment_id": "pay_local_1"},
        }))
    );

    // A retry finds the first payment instead of charging again.
    assert_eq!(gateway.charge(&request).await.unwrap(), charge);
    assert_eq!(fake.payments().len(), 1);

    fake.succeed_payment(&charge.provider_payment_id).unwrap();
    assert_eq!(
        gateway.charge(&request).await.unwrap(),
        Charge {
            provider_payment_id: charge.provider_payment_id.clone(),
            status: ChargeStatus::Succeeded,
        }
    );
    assert_eq!(fake.payments().len(), 1);
}

#[tokio::test]
async fn a_dodo_charge_that_failed_is_declined_on_retry() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let gateway = dodo_gateway(&fake);
    let request = charge_request("pay_local_2", None, "", Some("sub_dodo"));
    let charge = gateway.charge(&request).await.unwrap();
    let delivery = fake
        .fail_payment(
            &charge.provider_payment_id,
            "INSUFFICIENT_FUNDS",
            "Insufficient funds",
        )
        .unwrap();
    assert!(delivery.body.contains(event_types::PAYMENT_FAILED));
    assert_eq!(
        gateway.charge(&request).await,
        Err(declined("INSUFFICIENT_FUNDS", "Insufficient funds"))
    );
    assert_eq!(fake.payments().len(), 1);
}

#[tokio::test]
async fn dodo_charges_only_through_a_subscription() {
    let fake = FakeDodo::start().await;
    let error = dodo_gateway(&fake)
        .charge(&charge_request("pay_1", Some("cus_dodo"), "pm_1", None))
        .await
        .unwrap_err();
    assert!(matches!(error, GatewayError::Unsupported(_)), "{error:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn dodo_refunds_a_whole_payment_once_per_refund_id() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let gateway = dodo_gateway(&fake);
    let charge = gateway
        .charge(&charge_request("pay_1", None, "", Some("sub_dodo")))
        .await
        .unwrap();

    // Not refundable before it is paid.
    let early = refund_request("refund_early", &charge.provider_payment_id, 2500);
    assert_eq!(
        failed_action(gateway.refund(&early).await.unwrap_err()),
        "refund the payment"
    );
    fake.succeed_payment(&charge.provider_payment_id).unwrap();

    let request = refund_request("refund_local_1", &charge.provider_payment_id, 2500);
    let refund = gateway.refund(&request).await.unwrap();
    assert_eq!(refund.status, ChargeStatus::Pending);
    assert!(refund.provider_refund_id.starts_with("ref_"), "{refund:?}");
    let sent = fake
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/refunds")
        .unwrap();
    assert_eq!(
        sent.json(),
        Some(json!({
            "payment_id": charge.provider_payment_id,
            "reason": "billstream refund refund_local_1",
            "metadata": {"billstream_refund_id": "refund_local_1"},
        }))
    );

    assert_eq!(gateway.refund(&request).await.unwrap(), refund);
    assert_eq!(fake.refunds().len(), 1);
    assert_eq!(fake.refunds()[0]["amount"], 2500);
}

#[tokio::test]
async fn a_partial_dodo_refund_names_the_subscriptions_product() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let gateway = dodo_gateway(&fake);
    let charge = gateway
        .charge(&charge_request("pay_1", None, "", Some("sub_dodo")))
        .await
        .unwrap();
    fake.succeed_payment(&charge.provider_payment_id).unwrap();

    let refund = gateway
        .refund(&refund_request(
            "refund_part",
            &charge.provider_payment_id,
            500,
        ))
        .await
        .unwrap();
    let sent = fake
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/refunds")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        sent["items"],
        json!([{"item_id": "pdt_fake", "amount": 500}])
    );
    let stored = &fake.refunds()[0];
    assert_eq!(stored["refund_id"], refund.provider_refund_id.as_str());
    assert_eq!(stored["amount"], 500);
    assert_eq!(stored["is_partial"], true);

    // More than was paid, or in another currency, is refused before Dodo is asked.
    let too_much = refund_request("refund_big", &charge.provider_payment_id, 2600);
    assert_eq!(
        failed_action(gateway.refund(&too_much).await.unwrap_err()),
        "refund the payment"
    );
    let euros = RefundRequest {
        currency: "EUR",
        ..refund_request("refund_eur", &charge.provider_payment_id, 100)
    };
    assert_eq!(
        failed_action(gateway.refund(&euros).await.unwrap_err()),
        "refund the payment"
    );
    assert_eq!(fake.refunds().len(), 1);
}

#[tokio::test]
async fn dodo_describes_a_method_from_the_customers_list() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    fake.add_card("pm_card", "cus_dodo", "VISA", "4242", 3, 2030);
    let gateway = dodo_gateway(&fake);
    assert_eq!(
        gateway
            .describe_payment_method("pm_card", Some("cus_dodo"))
            .await,
        Ok(CollectedMethod {
            reference: "pm_card".into(),
            payment_type: "card".into(),
            card: Some(CollectedCard {
                brand: "visa".into(),
                last_four: "4242".into(),
                exp_month: 3,
                exp_year: 2030,
            }),
        })
    );
    // A method Dodo does not list is still the subscription's mandate.
    assert_eq!(
        gateway
            .describe_payment_method("pm_unlisted", Some("cus_dodo"))
            .await,
        Ok(CollectedMethod {
            reference: "pm_unlisted".into(),
            payment_type: "mandate".into(),
            card: None,
        })
    );
    assert_eq!(
        failed_action(
            gateway
                .describe_payment_method("pm_card", Some("cus_unknown"))
                .await
                .unwrap_err()
        ),
        "list the customer's payment methods"
    );
}

#[tokio::test]
async fn a_signed_subscription_active_is_verified_and_names_the_mandate() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let gateway = dodo_gateway(&fake);
    let mut data = fake.subscription("sub_dodo").unwrap();
    data["payload_type"] = json!("Subscription");
    data["payment_method_id"] = json!("pm_mandate");
    data["metadata"] = json!({"billstream_subscription_id": "sub_local"});
    let delivery = fake.delivery(
        event_types::SUBSCRIPTION_ACTIVE,
        data,
        Utc::now().timestamp(),
    );

    assert_eq!(
        gateway.verify_delivery(
            &dodo_headers(&delivery),
            delivery.body.as_bytes(),
            Utc::now()
        ),
        Ok(Delivery {
            id: delivery.id.clone(),
            livemode: None,
        })
    );
    assert_eq!(
        gateway.interpret(delivery.body.as_bytes()),
        Ok(Interpreted {
            event_type: event_types::SUBSCRIPTION_ACTIVE.into(),
            meaning: EventMeaning::SubscriptionPaymentMethod {
                provider_subscription: "sub_dodo".into(),
                provider_customer: "cus_dodo".into(),
                payment_method: Some("pm_mandate".into()),
                metadata: metadata(&[("billstream_subscription_id", "sub_local")]),
            },
        })
    );
}

#[tokio::test]
async fn a_completed_payment_link_is_a_subscription_updated_with_the_new_card() {
    let fake = FakeDodo::start().await;
    fake.add_subscription("sub_dodo", "cus_dodo", "active");
    let gateway = dodo_gateway(&fake);
    let delivery = fake
        .complete_payment_method_update("sub_dodo", "pm_fresh", "VISA", "1111", 1, 2031)
        .unwrap();
    gateway
        .verify_delivery(
            &dodo_headers(&delivery),
            delivery.body.as_bytes(),
            Utc::now(),
        )
        .unwrap();
    let Interpreted {
        event_type,
        meaning,
    } = gateway.interpret(delivery.body.as_bytes()).unwrap();
    assert_eq!(event_type, event_types::SUBSCRIPTION_UPDATED);
    let EventMeaning::SubscriptionPaymentMethod { payment_method, .. } = meaning else {
        panic!("expected a subscription's payment method, got {meaning:?}");
    };
    assert_eq!(payment_method.as_deref(), Some("pm_fresh"));
    assert_eq!(
        gateway
            .describe_payment_method("pm_fresh", Some("cus_dodo"))
            .await
            .unwrap()
            .card
            .map(|c| c.last_four),
        Some("1111".into())
    );
}

#[tokio::test]
async fn forged_stale_and_unsigned_dodo_deliveries_are_refused() {
    let fake = FakeDodo::start().await;
    let gateway = dodo_gateway(&fake);
    let now = Utc::now();
    let delivery = fake.delivery(
        event_types::PAYMENT_SUCCEEDED,
        json!({"payload_type": "Payment", "payment_id": "pay_1"}),
        now.timestamp(),
    );

    let forged = delivery.body.replace("pay_1", "pay_2");
    assert_eq!(
        refusal(
            gateway
                .verify_delivery(&dodo_headers(&delivery), forged.as_bytes(), now)
                .unwrap_err()
        ),
        ("invalid_signature", "Invalid webhook signature".into())
    );
    let mut without_id = dodo_headers(&delivery);
    without_id.remove("webhook-id");
    assert_eq!(
        refusal(
            gateway
                .verify_delivery(&without_id, delivery.body.as_bytes(), now)
                .unwrap_err()
        ),
        ("missing_signature", "Missing webhook-id header".into())
    );
    let stale = fake.delivery(
        event_types::PAYMENT_SUCCEEDED,
        json!({"payload_type": "Payment", "payment_id": "pay_1"}),
        now.timestamp() - 301,
    );
    assert_eq!(
        refusal(
            gateway
                .verify_delivery(&dodo_headers(&stale), stale.body.as_bytes(), now)
                .unwrap_err()
        ),
        (
            "stale_webhook",
            "Webhook timestamp is outside the 5-minute tolerance".into()
        )
    );

    // Genuine, but nothing billstream acts on through this port.
    assert_eq!(
        gateway.interpret(delivery.body.as_bytes()),
        Ok(Interpreted {
            event_type: event_types::PAYMENT_SUCCEEDED.into(),
            meaning: EventMeaning::Other,
        })
    );
    // A subscription event whose data is not a subscription.
    let odd = fake.delivery(
        event_types::SUBSCRIPTION_ACTIVE,
        json!({"payload_type": "Payment", "payment_id": "pay_1"}),
        now.timestamp(),
    );
    assert_eq!(
        refusal(gateway.interpret(odd.body.as_bytes()).unwrap_err()),
        ("invalid_payload", "Invalid webhook payload".into())
    );
    assert_eq!(
        refusal(gateway.interpret(b"[]").unwrap_err()),
        ("invalid_payload", "Invalid webhook payload".into())
    );

    let unsigned = DodoGateway::new(
        DodoClient::new(fake.base_url(), fake.api_key()),
        None,
        false,
    );
    assert_eq!(
        unsigned.verify_delivery(&dodo_headers(&delivery), delivery.body.as_bytes(), now),
        Err(GatewayError::NotConfigured("Dodo"))
    );
}
