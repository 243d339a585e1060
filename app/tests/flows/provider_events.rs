//! A provider's webhook event is handled once: a Stripe merchant against the fake Stripe, whose
//! signed `setup_intent.succeeded` adds the card the first time it is delivered, and changes
//! nothing when delivered again (after, or racing); a forged delivery changes nothing.

use app::merchants::{Provider, ProviderSettings, StripeSettings};
use app::provider_events::Received;
use app::setup_intents::StartedSetup;
use app::AppError;
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::PaymentMethodCommand;
use futures::future::join_all;
use projections::read_models::payment_method_list::{
    PaymentMethodListProjection, PaymentMethodView,
};
use providers::fakes::{FakeStripe, StripeDelivery};
use providers::stripe_webhook;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::support::Fixture;

struct Stripe {
    f: Fixture,
    stripe: FakeStripe,
}

async fn stripe_merchant() -> Stripe {
    let stripe = FakeStripe::start().await;
    let settings = ProviderSettings {
        stripe: StripeSettings {
            secret_key: Some(stripe.secret_key().to_owned()),
            publishable_key: Some("pk_test_billstream".to_owned()),
            webhook_secret: Some(stripe.webhook_secret().to_owned()),
            base_url: Some(stripe.base_url()),
        },
        ..ProviderSettings::new(Provider::Stripe)
    };
    Stripe {
        f: Fixture::with_provider(&settings).await,
        stripe,
    }
}

fn headers(signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        stripe_webhook::SIGNATURE_HEADER,
        HeaderValue::from_str(signature).unwrap(),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

impl Stripe {
    /// A customer with external id `external_id`, and a setup intent made for it through
    /// billstream, completed at Stripe with a new visa card: the delivery Stripe sends and the
    /// card's Stripe id.
    async fn completed_intent(&self, external_id: &str) -> (CustomerId, StripeDelivery, String) {
        let customer = self
            .f
            .external_customer(&format!("{external_id}@example.com"), external_id)
            .await;
        let started = self
            .f
            .app
            .create_setup_intent(&self.f.metadata, Some(external_id))
            .await
            .unwrap();
        let StartedSetup::Stripe { intent_id, .. } = started else {
            panic!("a Stripe merchant's intent is Stripe's: {started:?}");
        };
        let stripe_customer = self.stripe.setup_intent(&intent_id).unwrap()["customer"]
            .as_str()
            .unwrap()
            .to_owned();
        let pm = format!("pm_{}", uuid::Uuid::new_v4().simple());
        self.stripe
            .add_card(&pm, &stripe_customer, "visa", "4242", 11, 2031);
        let delivery = self.stripe.succeed_setup_intent(&intent_id, &pm).unwrap();
        (customer.id, delivery, pm)
    }

    async fn deliver(&self, delivery: &StripeDelivery) -> Result<Received, AppError> {
        self.f
            .app
            .receive_webhook(
                Provider::Stripe,
                &self.f.merchant_id,
                &headers(&delivery.signature),
                delivery.body.as_bytes(),
                None,
            )
            .await
    }

    async fn methods(&self, customer: &CustomerId) -> Vec<PaymentMethodView> {
        PaymentMethodListProjection::for_customer(&self.f.pool, self.f.tenant(), customer)
            .await
            .unwrap()
    }

    async fn events_recorded(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM provider_webhook_events")
            .fetch_one(&self.f.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_delivery_is_processed_once() {
    let s = stripe_merchant().await;
    let (customer, delivery, pm) = s.completed_intent("user_1").await;

    assert_eq!(s.deliver(&delivery).await, Ok(Received::Processed));
    let methods = s.methods(&customer).await;
    assert_eq!(methods.len(), 1, "{methods:?}");
    assert_eq!(methods[0].provider, "stripe");
    assert_eq!(methods[0].provider_reference.as_deref(), Some(pm.as_str()));
    assert_eq!(methods[0].card_last_four.as_deref(), Some("4242"));

    assert_eq!(s.deliver(&delivery).await, Ok(Received::Duplicate));
    assert_eq!(s.methods(&customer).await.len(), 1);
    assert_eq!(s.events_recorded().await, 1);
    let actor: String = sqlx::query_scalar(
        "SELECT metadata ->> 'actor' FROM events WHERE event_type = 'PaymentMethodAdded'",
    )
    .fetch_one(&s.f.pool)
    .await
    .unwrap();
    assert_eq!(actor, format!("webhook:stripe:{}", delivery.event_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_deliveries_add_the_card_once() {
    let s = stripe_merchant().await;
    let (customer, delivery, pm) = s.completed_intent("user_1").await;
    let deliveries = (0..4).map(|_| {
        let app = s.f.app.clone();
        let merchant_id = s.f.merchant_id.clone();
        let delivery = delivery.clone();
        tokio::spawn(async move {
            app.receive_webhook(
                Provider::Stripe,
                &merchant_id,
                &headers(&delivery.signature),
                delivery.body.as_bytes(),
                None,
            )
            .await
        })
    });
    let results: Vec<_> = join_all(deliveries)
        .await
        .into_iter()
        .map(|joined| joined.expect("the delivery ran"))
        .collect();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(results.contains(&Ok(Received::Processed)), "{results:?}");
    let methods = s.methods(&customer).await;
    assert_eq!(methods.len(), 1, "{methods:?}");
    assert_eq!(methods[0].provider_reference.as_deref(), Some(pm.as_str()));
    assert_eq!(s.events_recorded().await, 1);
    assert_eq!(s.deliver(&delivery).await, Ok(Received::Duplicate));
}

/// Stripe may send two events about one payment method: the second is processed, and adds
/// nothing.
#[tokio::test]
async fn another_event_for_the_same_card_adds_nothing() {
    let s = stripe_merchant().await;
    let (customer, first, _) = s.completed_intent("user_1").await;
    assert_eq!(s.deliver(&first).await, Ok(Received::Processed));

    let object: serde_json::Value =
        serde_json::from_str::<serde_json::Value>(&first.body).unwrap()["data"]["object"].clone();
    let second = s.stripe.event_delivery(
        stripe_webhook::SETUP_INTENT_SUCCEEDED,
        object,
        s.f.app.clock.now().timestamp(),
    );
    assert_ne!(second.event_id, first.event_id);
    assert_eq!(s.deliver(&second).await, Ok(Received::Processed));
    assert_eq!(s.methods(&customer).await.len(), 1);
    assert_eq!(s.events_recorded().await, 2);
}

#[tokio::test]
async fn a_forged_delivery_is_refused_and_changes_nothing() {
    let s = stripe_merchant().await;
    let (customer, delivery, _) = s.completed_intent("user_1").await;
    let forged = stripe_webhook::sign(
        "whsec_not_the_merchants",
        s.f.app.clock.now().timestamp(),
        delivery.body.as_bytes(),
    );
    let refused =
        s.f.app
            .receive_webhook(
                Provider::Stripe,
                &s.f.merchant_id,
                &headers(&forged),
                delivery.body.as_bytes(),
                None,
            )
            .await;
    match refused {
        Err(AppError::Invalid { code, .. }) => assert_eq!(code, "invalid_signature"),
        other => panic!("expected invalid_signature, got {other:?}"),
    }
    // The right signature over another body is forged too.
    let tampered = delivery
        .body
        .replacen("\"livemode\":false", "\"livemode\":true", 1);
    assert_ne!(tampered, delivery.body);
    let refused =
        s.f.app
            .receive_webhook(
                Provider::Stripe,
                &s.f.merchant_id,
                &headers(&delivery.signature),
                tampered.as_bytes(),
                None,
            )
            .await;
    assert!(
        matches!(
            &refused,
            Err(AppError::Invalid {
                code: "invalid_signature",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(s.methods(&customer).await.is_empty());
    assert_eq!(s.events_recorded().await, 0);

    // The genuine delivery still goes through afterwards.
    assert_eq!(s.deliver(&delivery).await, Ok(Received::Processed));
    assert_eq!(s.methods(&customer).await.len(), 1);
}

/// An earlier delivery added the card, then failed before the customer's subscription moved to
/// it (simulated: the card added on its own): the provider's retry adds nothing and finishes
/// the move.
#[tokio::test]
async fn a_redelivery_finishes_the_move_an_earlier_one_left_undone() {
    let s = stripe_merchant().await;
    let f = &s.f;
    let (customer, delivery, pm) = s.completed_intent("user_1").await;
    let plan = f.plan().await;
    let old = f.card(&customer, "1111").await;
    let subscription = f.start(&customer, &plan, Some(&old)).await.unwrap();
    let added = PaymentMethodId::generate();
    f.app
        .payment_methods
        .execute_new(
            added.as_str(),
            PaymentMethodCommand::AddPaymentMethod {
                id: added.clone(),
                tenant: f.tenant().clone(),
                customer_id: customer.clone(),
                provider: Provider::Stripe,
                payment_type: "card".into(),
                card: None,
                provider_reference: Some(pm.clone()),
            },
            &f.metadata,
        )
        .await
        .unwrap();
    assert_eq!(f.linked(&old).await, subscription.id, "not moved yet");

    assert_eq!(s.deliver(&delivery).await, Ok(Received::Processed));
    assert_eq!(
        s.methods(&customer).await.len(),
        2,
        "the old card and Stripe's"
    );
    assert_eq!(f.linked(&added).await, subscription.id);
    assert_eq!(f.linked(&old).await, None);
    let live = f.live_subscription(&customer).await.unwrap();
    assert_eq!(live.payment_method_id.as_deref(), Some(added.as_str()));
}

/// A charge Stripe settles later: `payment_intent.succeeded` settles the pending payment and
/// pays its invoice, once however often it is delivered; `payment_intent.payment_failed`
/// records the card's message.
#[tokio::test]
async fn payment_intent_events_settle_pending_charges_once() {
    use app::invoices::{NewInvoice, NewLine};
    use domain::id::{InvoiceId, PaymentId};
    use domain::payment::{PaymentCommand, PaymentKind};
    use serde_json::json;

    let s = stripe_merchant().await;
    let f = &s.f;
    let (customer, delivery, _) = s.completed_intent("user_pi").await;
    s.deliver(&delivery).await.unwrap();
    let card = s.methods(&customer).await[0].id.clone();
    let mut pending = Vec::new();
    for _ in 0..2 {
        let draft = f
            .app
            .create_invoice(
                &f.metadata,
                NewInvoice {
                    customer_id: Some(customer.to_string()),
                    currency: Some("USD".into()),
                    lines: Some(vec![NewLine {
                        description: Some("Seats".into()),
                        quantity: Some(1),
                        unit_amount_cents: Some(1200),
                    }]),
                },
            )
            .await
            .unwrap();
        let invoice = f
            .app
            .finalize_invoice(&f.metadata, &draft.id)
            .await
            .unwrap();
        // Recorded pending, as a charge is before Stripe answers it.
        let payment = PaymentId::generate();
        f.app
            .payments
            .execute_new(
                payment.as_str(),
                PaymentCommand::Initiate {
                    id: payment.clone(),
                    tenant: f.tenant().clone(),
                    customer_id: customer.clone(),
                    invoice_id: Some(InvoiceId::parse(&invoice.id).unwrap()),
                    payment_method_id: Some(card.clone()),
                    provider: domain::provider::Provider::Stripe,
                    kind: PaymentKind::Charge,
                    amount_cents: 1200,
                    currency: domain::currency::Currency::parse("USD").unwrap(),
                    refunded_payment_id: None,
                    top_up: None,
                },
                &f.metadata,
            )
            .await
            .unwrap();
        pending.push((invoice.id, payment));
    }
    // Stripe signs with its own clock, which the app's checks against its own.
    let now = f.app.clock.now().timestamp();
    let intent = |payment: &PaymentId, error: Option<serde_json::Value>| {
        json!({"id": format!("pi_{}", uuid::Uuid::new_v4().simple()), "object": "payment_intent",
            "metadata": {"billstream_payment_id": payment.as_str()},
            "last_payment_error": error})
    };
    let succeeded = intent(&pending[0].1, None);
    for _ in 0..2 {
        let delivery = s
            .stripe
            .event_delivery("payment_intent.succeeded", succeeded.clone(), now);
        s.deliver(&delivery).await.unwrap();
    }
    let paid = f.app.invoice(f.principal(), &pending[0].0).await.unwrap();
    assert_eq!(paid.status, "paid");
    assert_eq!(paid.amount_paid_cents, 1200, "recorded once");
    let payment = f
        .app
        .payment(f.principal(), pending[0].1.as_str())
        .await
        .unwrap();
    assert_eq!(payment.status, "succeeded");
    assert_eq!(
        payment.provider_reference.as_deref(),
        succeeded["id"].as_str()
    );

    let failed = intent(
        &pending[1].1,
        Some(
            json!({"code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds."}),
        ),
    );
    let delivery = s
        .stripe
        .event_delivery("payment_intent.payment_failed", failed, now);
    s.deliver(&delivery).await.unwrap();
    let payment = f
        .app
        .payment(f.principal(), pending[1].1.as_str())
        .await
        .unwrap();
    assert_eq!(payment.status, "failed");
    assert_eq!(payment.error_code.as_deref(), Some("insufficient_funds"));
    assert_eq!(
        payment.error_message.as_deref(),
        Some("Your card has insufficient funds.")
    );
    let unpaid = f.app.invoice(f.principal(), &pending[1].0).await.unwrap();
    assert_eq!(unpaid.status, "issued");
}
