//! The fixture every flow test starts from: a fresh database (a copy of the migrated template),
//! one merchant, the [`App`] over it and a test-mode secret key's metadata; and helpers that
//! make customers, plans, cards and portal sessions through the use-cases themselves.
//!
//! The app runs without its log consumers, so only reads of inline read models (which commit
//! with the append) are used here.

use std::future::Future;
use std::time::{Duration, Instant};

use app::customers::NewCustomer;
use app::merchants::{self, Provider, ProviderSettings};
use app::payment_methods::{Added, CollectedPaymentMethod};
use app::plans::NewPlan;
use app::subscriptions::NewSubscription;
use app::{App, AppError, CommandMetadata, Principal};
use domain::id::{CustomerId, PaymentMethodId, PlanId, SubscriptionId};
use domain::payment_method::{Card, PaymentMethod};
use domain::subscription::Subscription;
use domain::tenant::{Mode, Tenant};
use projections::read_models::customer_list::CustomerListView;
use projections::read_models::invoice_list::{InvoiceFilter, InvoiceView};
use projections::read_models::payment_list::{PaymentFilter, PaymentView};
use projections::read_models::subscription_list::{SubscriptionListProjection, SubscriptionView};
use projections::testing::TestDatabase;
use serde_json::json;
use sqlx::PgPool;

/// Connections per test's pool: enough for the races below, few enough for tests in parallel.
const POOL_SIZE: u32 = 8;

pub struct Fixture {
    pub app: App,
    pub pool: PgPool,
    pub merchant_id: String,
    /// A test-mode secret key of the merchant.
    pub metadata: CommandMetadata,
    // Dropped last: it drops the database.
    pub database: TestDatabase,
}

impl Fixture {
    /// A sandbox merchant.
    pub async fn new() -> Self {
        Self::with_provider(&ProviderSettings::new(Provider::Sandbox)).await
    }

    /// A merchant billing through `settings.provider`.
    pub async fn with_provider(settings: &ProviderSettings) -> Self {
        let database = TestDatabase::create().await;
        let pool = projections::database::connect_and_migrate(&database.url, POOL_SIZE)
            .await
            .expect("connect to the test database");
        let merchant = merchants::create_merchant_with_providers(&pool, "Test", settings)
            .await
            .expect("create the merchant");
        let metadata = CommandMetadata {
            principal: Principal {
                tenant: Tenant::new(merchant.merchant_id.clone(), Mode::Test),
                key_id: "key_test".into(),
                session: None,
            },
            request_id: None,
            flow: None,
        };
        Self {
            app: App::new(pool.clone()),
            pool,
            merchant_id: merchant.merchant_id,
            metadata,
            database,
        }
    }

    pub fn tenant(&self) -> &Tenant {
        self.metadata.tenant()
    }

    pub fn principal(&self) -> &Principal {
        &self.metadata.principal
    }

    /// A customer with `email` and no other detail.
    pub async fn customer(&self, email: &str) -> CustomerId {
        let created = self
            .app
            .create_customer(
                &self.metadata,
                NewCustomer {
                    email: Some(email.to_owned()),
                    ..NewCustomer::default()
                },
            )
            .await
            .expect("create a customer");
        created.id
    }

    /// A customer with `email` and external id `external_id`.
    pub async fn external_customer(&self, email: &str, external_id: &str) -> CustomerListView {
        let mut new = NewCustomer {
            email: Some(email.to_owned()),
            ..NewCustomer::default()
        };
        new.fields.external_customer_id = Some(external_id.to_owned());
        self.app
            .create_customer(&self.metadata, new)
            .await
            .expect("create a customer")
    }

    /// A $29 flat monthly plan in USD.
    pub async fn plan(&self) -> PlanId {
        let plan = self
            .app
            .create_plan(
                &self.metadata,
                NewPlan {
                    name: Some("Pro".into()),
                    currency: Some("USD".into()),
                    pricing_data: Some(json!({"components":[{"type":"flat","amountCents":2900}]})),
                    ..NewPlan::default()
                },
            )
            .await
            .expect("create a plan");
        plan.id.expect("a plan id")
    }

    /// A sandbox card added to the customer (as its default), ending in `last_four`.
    pub async fn card(&self, customer: &CustomerId, last_four: &str) -> PaymentMethodId {
        let id = PaymentMethodId::generate();
        let added = self
            .app
            .add_collected_payment_method(
                &self.metadata,
                customer,
                id.clone(),
                sandbox_card(last_four),
            )
            .await
            .expect("add a card");
        assert!(matches!(added, Added::New(_)), "{added:?}");
        id
    }

    pub async fn start(
        &self,
        customer: &CustomerId,
        plan: &PlanId,
        card: Option<&PaymentMethodId>,
    ) -> Result<Subscription, AppError> {
        start(&self.app, &self.metadata, customer, plan, card).await
    }

    /// The payment method as commands see it now.
    pub async fn method(&self, id: &PaymentMethodId) -> PaymentMethod {
        self.app
            .payment_methods
            .current(id.as_str())
            .await
            .expect("load the payment method")
    }

    /// The subscription a payment method is linked to.
    pub async fn linked(&self, id: &PaymentMethodId) -> Option<SubscriptionId> {
        self.method(id).await.linked_subscription
    }

    /// The subscription as commands see it now.
    pub async fn subscription(&self, id: &SubscriptionId) -> Subscription {
        self.app
            .subscriptions
            .current(id.as_str())
            .await
            .expect("load the subscription")
    }

    /// The customer's subscription that is not canceled, from the read model.
    pub async fn live_subscription(&self, customer: &CustomerId) -> Option<SubscriptionView> {
        SubscriptionListProjection::live_for_customer(&self.pool, self.tenant(), customer)
            .await
            .expect("read subscription_list")
    }

    /// A portal session's principal for the customer with `external_id`, made and
    /// authenticated as a request's token would be.
    pub async fn session(&self, external_id: &str) -> Principal {
        let session = self
            .app
            .create_portal_session(self.principal(), Some(external_id))
            .await
            .expect("create a portal session");
        let principal = self
            .app
            .authenticate_key_or_session(&session.token)
            .await
            .expect("authenticate the portal session");
        assert!(
            principal.key_id.starts_with("portal_session:"),
            "{principal:?}"
        );
        principal
    }
}

pub async fn start(
    app: &App,
    metadata: &CommandMetadata,
    customer: &CustomerId,
    plan: &PlanId,
    card: Option<&PaymentMethodId>,
) -> Result<Subscription, AppError> {
    app.start_subscription(
        metadata,
        NewSubscription {
            customer_id: Some(customer.as_str().to_owned()),
            plan_id: Some(plan.as_str().to_owned()),
            payment_method_id: card.map(|id| id.as_str().to_owned()),
            quantity: None,
        },
    )
    .await
}

/// A visa card the sandbox collected, ending in `last_four`.
pub fn sandbox_card(last_four: &str) -> CollectedPaymentMethod {
    CollectedPaymentMethod {
        provider: Provider::Sandbox,
        payment_type: "card".into(),
        card: Some(Card {
            brand: "visa".into(),
            last_four: last_four.into(),
            exp_month: 12,
            exp_year: 2030,
        }),
        provider_reference: None,
    }
}

/// Metadata acting for `principal` (a portal session, say).
pub fn acting_as(principal: &Principal) -> CommandMetadata {
    CommandMetadata::acting_as(principal.clone())
}

/// The subscription's id.
pub fn id_of(subscription: &Subscription) -> SubscriptionId {
    subscription.id.clone().expect("a started subscription")
}

/// Asserts `result` is a 409 with exactly `message`.
#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, AppError>, message: &str) {
    match result {
        Err(AppError::Conflict { message: m, .. }) if m == message => {}
        other => panic!("expected Conflict {message:?}, got {other:?}"),
    }
}

/// Asserts `result` is a 404 with exactly `message`.
#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, AppError>, message: &str) {
    match result {
        Err(AppError::NotFound(m)) if m == message => {}
        other => panic!("expected NotFound {message:?}, got {other:?}"),
    }
}

/// Waits until `check` answers true, for at most ten seconds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The subscription's invoices, oldest first.
pub async fn invoices(f: &Fixture, subscription: &SubscriptionId) -> Vec<InvoiceView> {
    let filter = InvoiceFilter {
        subscription_id: Some(subscription.to_string()),
        ..InvoiceFilter::default()
    };
    let (mut invoices, _) = f
        .app
        .list_invoices(f.principal(), &filter, None, 100)
        .await
        .unwrap();
    invoices.reverse();
    invoices
}

/// The invoice's payments, oldest first.
pub async fn payments(f: &Fixture, invoice: &InvoiceView) -> Vec<PaymentView> {
    let filter = PaymentFilter {
        invoice_id: Some(invoice.id.clone()),
        ..PaymentFilter::default()
    };
    let (mut payments, _) = f
        .app
        .list_payments(f.principal(), &filter, None, 100)
        .await
        .unwrap();
    payments.reverse();
    payments
}

/// Rebuilds read model `name` from the log, quietly.
pub async fn rebuild(f: &Fixture, name: &str) {
    struct Quiet;
    impl projections::rebuild::Progress for Quiet {
        fn started(&self, _: u64) {}
        fn advanced(&self, _: u64) {}
    }
    projections::rebuild::rebuild(&f.pool, name, &Quiet)
        .await
        .unwrap();
}

/// Two more instances over the fixture's database, whose test clock was moved `by` without
/// running anything: to let their schedulers race over what fell due.
pub async fn two_instances_after(f: &Fixture, by: chrono::Duration) -> (App, App) {
    set_clock_offset(f, by).await;
    let (one, two) = (App::new(f.pool.clone()), App::new(f.pool.clone()));
    one.load_test_clocks().await.unwrap();
    two.load_test_clocks().await.unwrap();
    (one, two)
}

/// Sets the fixture's test clock `offset` ahead of the wall clock without running anything
/// that falls due (instances see it once they load the clocks).
pub async fn set_clock_offset(f: &Fixture, offset: chrono::Duration) {
    sqlx::query(
        "INSERT INTO test_clocks (tenant, offset_us) VALUES ($1, $2) \
         ON CONFLICT (tenant) DO UPDATE SET offset_us = EXCLUDED.offset_us",
    )
    .bind(f.tenant().key())
    .bind(offset.num_microseconds().unwrap())
    .execute(&f.pool)
    .await
    .unwrap();
}

/// Lets the schedulers of `one` and `two` race over what is due, then, as `serve` does every
/// second, resume what a race's loser let go midway (its flow released on our side, as a
/// crash would leave it) and race once more.
pub async fn race_schedulers(one: &App, two: &App) {
    tokio::join!(one.run_scheduler_once(), two.run_scheduler_once());
    let (resumed_one, resumed_two) =
        tokio::join!(one.resume_abandoned_flows(), two.resume_abandoned_flows());
    resumed_one.unwrap();
    resumed_two.unwrap();
    tokio::join!(one.run_scheduler_once(), two.run_scheduler_once());
}
