//! The application's context: what every use-case reaches — the database, a command runner per
//! aggregate, the clock, the key cache, the log consumers of this process to nudge.

use std::sync::Arc;

use domain::clock::{Clock, SystemClock};
use domain::credit::{CreditLedger, CreditServices};
use domain::customer::{Customer, CustomerServices};
use domain::invoice::{Invoice, InvoiceServices};

use crate::document_rendering::IssuedDocumentDigests;
use crate::document_series::DocumentSeries;
use crate::pdf_cache::PdfCache;
use crate::pieces_in_flight::PiecesInFlight;
use domain::organization::{Organization, OrganizationServices};
use domain::payment::{Payment, PaymentServices};
use domain::payment_method::{PaymentMethod, PaymentMethodServices};
use domain::plan::{Plan, PlanServices};
use domain::subscription::{Subscription, SubscriptionServices};
use domain::top_up::{TopUp, TopUpServices};
use projections::catch_up::CatchUpRunner;
use projections::read_models::customer_uniqueness::PgCustomerUniqueness;
use projections::read_models::registry;
use projections::statement_pool::StatementPool;
use projections::EventLog;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::command_runner::CommandRunner;
use crate::flows::DeathPlan;
use crate::instance::Instance;
use crate::key_cache::KeyCache;
use crate::portal_stream::PortalStreams;
use crate::test_clock::TenantClock;

/// The public URL of a service whose address nobody configured: the default `serve` address.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// How many credit ledgers' states a process keeps in memory.
const LEDGER_STATES: usize = 10_000;
/// How many subscriptions', invoices' and payments' states (each) a process keeps in memory:
/// a renewal commands each of the three two or three times within moments (renew, draft,
/// issue, charge, settle, record the payment, mark paid), and from the second command on
/// starts from the state the first left.
const BILLING_STATES: usize = 4_096;

/// How many customers' locks can be held at once per process; more wait for one to end.
const LOCK_CONNECTIONS: u32 = 4;

/// The application: its parts behind one `Arc`. Every request is handed the app (axum clones
/// its state per request, the authentication gate once more): one count to move, not one per
/// part (cloning and dropping the parts one by one was 4.7% of the process's CPU in balance
/// reads).
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What the app is made of, reached through [`App`].
#[derive(Clone)]
pub struct AppParts {
    pub pool: PgPool,
    /// Connections for the hottest single statements, given back without sqlx's ping
    /// (`projections/src/statement_pool.rs`); the log's appends and loads share them.
    pub statements: StatementPool,
    pub customers: Arc<CommandRunner<Customer>>,
    pub plans: Arc<CommandRunner<Plan>>,
    pub payment_methods: Arc<CommandRunner<PaymentMethod>>,
    pub subscriptions: Arc<CommandRunner<Subscription>>,
    pub organizations: Arc<CommandRunner<Organization>>,
    pub invoices: Arc<CommandRunner<Invoice>>,
    pub payments: Arc<CommandRunner<Payment>>,
    pub credits: Arc<CommandRunner<CreditLedger>>,
    pub top_ups: Arc<CommandRunner<TopUp>>,
    /// Issues of one tenant's series take turns in this process (`invoices.rs`).
    pub(crate) numbering: Arc<DocumentSeries>,
    /// The due work running in this process, so the scheduler and a test-clock advance do
    /// not both do one piece (`pieces_in_flight.rs`).
    pub(crate) pieces_in_flight: Arc<PiecesInFlight>,
    /// Rendered PDFs by their recorded digest (`pdf_cache.rs`).
    pub(crate) pdfs: Arc<PdfCache>,
    /// Where every "now" of the service comes from: the base clock, or a test-mode tenant's
    /// test clock (`test_clock.rs`).
    pub clock: Arc<dyn Clock>,
    pub(crate) tenant_clock: Arc<TenantClock>,
    pub(crate) keys: KeyCache,
    /// Connections that hold customers' locks (`customer_lock.rs`), apart from the pool the
    /// work itself uses: a lock waiting for its work's connection while holding one of the
    /// same pool could, many at once, leave none for any of them.
    pub(crate) lock_connections: PgPool,
    /// The `portal_overview` consumer of this process, nudged by portal reads.
    pub(crate) portal: CatchUpRunner,
    /// This process's open portal streams (`portal_stream/`), and what wakes their tailer:
    /// each append of this process.
    pub(crate) portal_streams: PortalStreams,
    pub(crate) appends: tokio::sync::watch::Receiver<u64>,
    /// Where callers reach this service: the start of every URL it hands out (portal links,
    /// confirm URLs), never the request's `Host` header, which the caller controls.
    public_url: Arc<str>,
    /// This process among the service's instances: its unfinished work is recorded under its
    /// key, and taken over by another instance once it is gone.
    pub instance: Instance,
    /// Where a crash test wants this process to die (`flows::DeathPlan`); never in service.
    pub(crate) death: Option<Arc<DeathPlan>>,
}

impl App {
    /// The application over `pool`, on the wall clock.
    pub fn new(pool: PgPool) -> Self {
        Self::with_clock(pool, Arc::new(SystemClock))
    }

    pub fn with_clock(pool: PgPool, base: Arc<dyn Clock>) -> Self {
        let tenant_clock = Arc::new(TenantClock::new(base));
        let clock: Arc<dyn Clock> = tenant_clock.clone();
        // Every append writes the inline read models of the registry in the same statement.
        // Appends of credit ledgers share statements when many are in flight: a lane per eight
        // connections of the pool (`combined_appends.rs`).
        let lanes = (pool.options().get_max_connections() as usize / 8).max(1);
        let log = EventLog::new(pool.clone(), registry::inline_projections())
            .combining_appends_of(registry::COMBINED_APPENDS, lanes);
        let appends = log.appends();
        let statements = log.statements().clone();
        let customer_services = CustomerServices {
            uniqueness: Arc::new(PgCustomerUniqueness::new(pool.clone())),
            clock: clock.clone(),
        };
        Self(Arc::new(AppParts {
            customers: Arc::new(CommandRunner::new(log.clone(), customer_services)),
            plans: Arc::new(CommandRunner::new(
                log.clone(),
                PlanServices {
                    clock: clock.clone(),
                },
            )),
            payment_methods: Arc::new(CommandRunner::new(
                log.clone(),
                PaymentMethodServices {
                    clock: clock.clone(),
                },
            )),
            subscriptions: Arc::new(
                CommandRunner::new(
                    log.clone(),
                    SubscriptionServices {
                        clock: clock.clone(),
                    },
                )
                .with_state_cache(BILLING_STATES),
            ),
            organizations: Arc::new(CommandRunner::new(
                log.clone(),
                OrganizationServices {
                    clock: clock.clone(),
                },
            )),
            invoices: Arc::new(
                CommandRunner::new(
                    log.clone(),
                    InvoiceServices {
                        clock: clock.clone(),
                        documents: Arc::new(IssuedDocumentDigests::default()),
                    },
                )
                .with_state_cache(BILLING_STATES),
            ),
            payments: Arc::new(
                CommandRunner::new(
                    log.clone(),
                    PaymentServices {
                        clock: clock.clone(),
                    },
                )
                .with_state_cache(BILLING_STATES),
            ),
            top_ups: Arc::new(CommandRunner::new(
                log.clone(),
                TopUpServices {
                    clock: clock.clone(),
                },
            )),
            // Usage hits the same ledgers again and again: their state is kept in memory
            // (`command_runner.rs` says why that is safe across instances).
            credits: Arc::new(
                CommandRunner::new(
                    log,
                    CreditServices {
                        clock: clock.clone(),
                    },
                )
                .with_state_cache(LEDGER_STATES),
            ),
            numbering: Arc::default(),
            pieces_in_flight: Arc::default(),
            pdfs: Arc::default(),
            clock,
            tenant_clock,
            lock_connections: PgPoolOptions::new()
                .max_connections(LOCK_CONNECTIONS)
                .connect_lazy_with(pool.connect_options().as_ref().clone()),
            pool,
            statements,
            keys: KeyCache::default(),
            portal: CatchUpRunner::default(),
            portal_streams: PortalStreams::default(),
            appends,
            public_url: Arc::from(DEFAULT_PUBLIC_URL),
            instance: Instance::default(),
            death: None,
        }))
    }

    /// The app with some of its parts changed (the builders below).
    fn with_parts(self, change: impl FnOnce(AppParts) -> AppParts) -> Self {
        Self(Arc::new(change(Arc::unwrap_or_clone(self.0))))
    }

    /// The app dying where `plan` says: for crash tests only.
    pub fn with_death(self, plan: DeathPlan) -> Self {
        self.with_parts(|parts| AppParts {
            death: Some(Arc::new(plan)),
            ..parts
        })
    }

    /// The app handing out URLs that start with `public_url` (without a trailing slash).
    pub fn with_public_url(self, public_url: &str) -> Self {
        self.with_parts(|parts| AppParts {
            public_url: Arc::from(public_url.trim_end_matches('/')),
            ..parts
        })
    }

    /// The start of every URL the service hands out.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The app whose idle portal streams send a heartbeat this often (15 s by default).
    pub fn with_stream_heartbeat(self, heartbeat: std::time::Duration) -> Self {
        self.with_parts(|parts| AppParts {
            portal_streams: PortalStreams::with_heartbeat(heartbeat),
            ..parts
        })
    }

    /// The app with the process's running `portal_overview` consumer to nudge.
    pub fn with_portal(self, portal: CatchUpRunner) -> Self {
        self.with_parts(|parts| AppParts { portal, ..parts })
    }

    /// Whether the database answers.
    pub async fn ready(&self) -> bool {
        projections::database::ping(&self.pool).await.is_ok()
    }
}
