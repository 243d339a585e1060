//! The billing phases: renewing many due subscriptions through the test clock, and invoice
//! PDFs downloaded on a cold and on a warm cache.
//!
//! The subscriptions are set up in this process through the app's use-cases (a customer, a
//! sandbox card, a subscription with a 14-day trial each): a trial bills nothing, so all of
//! them fall due together when the trial ends. The measured step is one test-clock advance
//! past that day: for each subscription a renewal flow (renew, draft, issue with the next
//! number and its PDF digest, charge pending, sandbox answer, payment recorded, invoice paid),
//! asked of the server over HTTP. The server's own scheduler runs meanwhile, as in service,
//! and takes some of the work.

use std::time::{Duration, Instant};

use app::customers::{CustomerFields, NewCustomer};
use app::merchants::{create_merchant, Provider};
use app::payment_methods::CollectedPaymentMethod;
use app::plans::NewPlan;
use app::principal::{CommandMetadata, Principal};
use app::subscriptions::NewSubscription;
use app::App;
use domain::id::PaymentMethodId;
use domain::payment_method::Card;
use domain::tenant::{Mode, Tenant};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use sqlx::PgPool;

use crate::http1::Connections;

/// Connections of the set-up's App (`renewals`).
const SETUP_CONNECTIONS: u32 = 4;

/// What renewing the due subscriptions took, and what it left behind.
pub struct Renewals {
    pub subscriptions: usize,
    pub setup: Duration,
    pub took: Duration,
    /// This process's CPU time (server and load generator) while they ran.
    pub cpu: Duration,
    /// Checked after the run: each subscription billed and paid once, numbered 1..n.
    pub paid_invoices: i64,
    pub succeeded_charges: i64,
    pub last_number: Option<String>,
    /// Some issued invoices, for the PDF phase.
    pub invoice_ids: Vec<String>,
    pub key: String,
}

impl Renewals {
    pub fn per_second(&self) -> f64 {
        self.subscriptions as f64 / self.took.as_secs_f64()
    }
}

pub async fn renewals(
    pool: &PgPool,
    server: &Connections,
    count: usize,
    clients: usize,
) -> Result<Renewals, String> {
    let merchant = create_merchant(
        pool,
        "Bench billing Zoë Łukasiewicz GmbH",
        Provider::Sandbox,
    )
    .await
    .map_err(|e| format!("create the billing merchant: {e}"))?;
    let tenant = Tenant::new(&merchant.merchant_id, Mode::Test);
    let metadata = CommandMetadata::acting_as(Principal {
        tenant: tenant.clone(),
        key_id: "bench".into(),
        session: None,
    });
    // The set-up's own App (a second process, in effect) on a small pool of its own: with
    // the server's pool, its statement pool and the raw pool beside, one more pool of 32 and
    // its statement pool would pass PostgreSQL's default 100 connections.
    let setup_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(SETUP_CONNECTIONS)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .map_err(|e| format!("the set-up's pool: {e}"))?;
    let app = App::new(setup_pool);
    let plan = app
        .create_plan(
            &metadata,
            NewPlan {
                name: Some("Pro".into()),
                currency: Some("usd".into()),
                pricing_data: Some(json!({"components": [
                    {"type": "flat", "name": "Pro", "amountCents": 2900},
                    {"type": "per_seat", "name": "Seats", "unitAmountCents": 1000},
                ]})),
                interval: Some("month".into()),
                trial_days: Some(14),
                ..NewPlan::default()
            },
        )
        .await
        .map_err(|e| format!("create the plan: {e}"))?;
    let plan_id = plan.id.ok_or("the plan has no id")?.to_string();

    let started = Instant::now();
    let setup = stream::iter(0..count)
        .map(|n| {
            let app = app.clone();
            let metadata = metadata.clone();
            let plan_id = plan_id.clone();
            async move { subscribe(&app, &metadata, &plan_id, n).await }
        })
        .buffer_unordered(clients)
        .try_collect::<Vec<()>>()
        .await;
    setup?;
    let setup = started.elapsed();
    // The advance starts on settled tables, as every measured phase does (`checkpoint`
    // vacuums the tables every phase writes; the set-up wrote others too).
    crate::settle_written_tables(pool).await;
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("no CHECKPOINT before the advance ({e}); figures may vary more");
    }

    eprintln!("renewals: advancing the test clock past {count} trial ends ...");
    let started = Instant::now();
    let cpu_before = crate::process_cpu();
    // Through the server, as a merchant advances it: in the process whose scheduler runs
    // meanwhile, so the two share what is in flight, as in service.
    let to = app.clock.now_for(&tenant) + chrono::Duration::days(15);
    let body = json!({ "to": to }).to_string();
    let (status, answer) = server
        .send(
            "POST",
            "/v1/test-clock/advance",
            &merchant.test_secret_key,
            Some(body.as_bytes()),
        )
        .await
        .map_err(|e| format!("advance the test clock: {e}"))?;
    if status != 200 {
        return Err(format!(
            "advance the test clock: {status} {}",
            String::from_utf8_lossy(&answer)
        ));
    }
    let took = started.elapsed();
    let cpu = crate::process_cpu().saturating_sub(cpu_before);

    let key = tenant.key();
    let paid_invoices: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invoice_list WHERE tenant = $1 AND status = 'paid' \
         AND document_type = 'standard'",
    )
    .bind(&key)
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    let succeeded_charges: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_list WHERE tenant = $1 AND status = 'succeeded' \
         AND kind = 'charge'",
    )
    .bind(&key)
    .fetch_one(pool)
    .await
    .map_err(|e| e.to_string())?;
    let last_number: Option<String> = sqlx::query_scalar(
        "SELECT number FROM document_numbers WHERE tenant = $1 AND series = 'INV' \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(&key)
    .fetch_optional(pool)
    .await
    .map_err(|e| e.to_string())?
    .flatten();
    let invoice_ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM invoice_list WHERE tenant = $1 AND number IS NOT NULL \
         ORDER BY number LIMIT 2000",
    )
    .bind(&key)
    .fetch_all(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(Renewals {
        subscriptions: count,
        setup,
        took,
        cpu,
        paid_invoices,
        succeeded_charges,
        last_number,
        invoice_ids,
        key: merchant.test_secret_key,
    })
}

/// Customer `n`, a sandbox card and a subscription in its trial.
async fn subscribe(
    app: &App,
    metadata: &CommandMetadata,
    plan_id: &str,
    n: usize,
) -> Result<(), String> {
    let customer = app
        .create_customer(
            metadata,
            NewCustomer {
                email: Some(format!("renewal-{n}@example.com")),
                fields: CustomerFields {
                    name: Some(format!("Zoë Łukasiewicz {n}")),
                    billing_city: Some("Kraków".into()),
                    ..CustomerFields::default()
                },
            },
        )
        .await
        .map_err(|e| format!("create customer {n}: {e}"))?;
    let card = PaymentMethodId::generate();
    app.add_collected_payment_method(
        metadata,
        &customer.id,
        card.clone(),
        CollectedPaymentMethod {
            provider: Provider::Sandbox,
            payment_type: "card".into(),
            card: Some(Card {
                brand: "visa".into(),
                last_four: "4242".into(),
                exp_month: 12,
                exp_year: 2030,
            }),
            provider_reference: None,
        },
    )
    .await
    .map_err(|e| format!("add a card for customer {n}: {e}"))?;
    app.start_subscription(
        metadata,
        NewSubscription {
            customer_id: Some(customer.id.to_string()),
            plan_id: Some(plan_id.to_owned()),
            payment_method_id: Some(card.to_string()),
            quantity: Some(1 + (n % 3) as i64),
        },
    )
    .await
    .map_err(|e| format!("subscribe customer {n}: {e}"))?;
    Ok(())
}

/// Downloads of invoice PDFs over HTTP: their rate and latencies.
pub struct PdfDownloads {
    pub downloads: usize,
    pub took: Duration,
    pub latencies: Vec<Duration>,
    pub bytes: usize,
}

impl PdfDownloads {
    pub fn per_second(&self) -> f64 {
        self.downloads as f64 / self.took.as_secs_f64()
    }

    /// The latency at quantile `q` (0..1).
    pub fn quantile_millis(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted
            .get(index)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
}

/// Downloads each of `ids` once per round, `clients` at a time.
pub async fn download_pdfs(
    connections: &Connections,
    key: &str,
    ids: &[String],
    rounds: usize,
    clients: usize,
) -> Result<PdfDownloads, String> {
    let started = Instant::now();
    let results: Vec<(Duration, usize)> = stream::iter((0..rounds).flat_map(|_| ids.iter()))
        .map(|id| {
            let key = key.to_owned();
            let path = format!("/v1/invoices/{id}/pdf");
            async move {
                let asked = Instant::now();
                let (status, body) = connections
                    .send("GET", &path, &key, None)
                    .await
                    .map_err(|e| format!("GET {path}: {e}"))?;
                if status != 200 || !body.starts_with(b"%PDF-") {
                    return Err(format!("GET {path}: {status}"));
                }
                Ok((asked.elapsed(), body.len()))
            }
        })
        .buffer_unordered(clients)
        .try_collect()
        .await?;
    Ok(PdfDownloads {
        downloads: results.len(),
        took: started.elapsed(),
        bytes: results.iter().map(|(_, bytes)| bytes).sum(),
        latencies: results.into_iter().map(|(latency, _)| latency).collect(),
    })
}
