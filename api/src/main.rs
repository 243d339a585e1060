//! The `billstream` binary: serve the API (the default), migrate, manage merchants.

use std::net::SocketAddr;
use std::process::ExitCode;

use app::flows::DeathPlan;
use app::number_prefixes::{set_number_prefixes, NumberPrefixes};
use billstream::merchants::{
    create_merchant_with_providers, set_grace_period_days, DodoSettings, Provider,
    ProviderSettings, StripeSettings, MAX_GRACE_PERIOD_DAYS,
};
use billstream::{progress, server, telemetry};
use clap::{Parser, Subcommand};
use domain::tenant::Mode;
use projections::database::PgPool;
use projections::database::{connect_and_migrate, redacted};
use projections::rebuild;

// mimalloc: a request allocates many small short-lived buffers, and glibc's malloc and free
// took over a tenth of the CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "billstream", version, about = "Event-sourced billing service")]
struct Cli {
    /// PostgreSQL to use; the database is created if the server lacks it.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@localhost:5432/billstream"
    )]
    database_url: String,
    /// Database connections of the service's pool; it opens half as many again for its
    /// hottest single statements (`projections/src/statement_pool.rs`), and 4 for customer
    /// locks.
    #[arg(long, global = true, env = "BILLSTREAM_DB_POOL", default_value_t = 32)]
    db_pool: u32,
    /// Log JSON lines instead of text.
    #[arg(long, global = true, env = "BILLSTREAM_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

// Parsed once at start: the size of the largest variant (merchants create, with its
// provider settings) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve {
        #[arg(long, env = "BILLSTREAM_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where callers reach the service (`https://billing.example.com`): the start of every
        /// URL it hands out. Default: `http://` and the address it listens on.
        #[arg(long, env = "BILLSTREAM_PUBLIC_URL", value_parser = parse_public_url)]
        public_url: Option<String>,
    },
    /// Create a demo merchant in test mode whose customer has cards, a subscription,
    /// invoices, payments and credits, print its portal link, then serve as `serve` does.
    Demo {
        #[arg(long, env = "BILLSTREAM_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// As for `serve`: the start of the printed portal link.
        #[arg(long, env = "BILLSTREAM_PUBLIC_URL", value_parser = parse_public_url)]
        public_url: Option<String>,
    },
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Manage merchants.
    Merchants {
        #[command(subcommand)]
        command: MerchantCommand,
    },
    /// Inspect and rebuild read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionCommand,
    },
    /// Inspect the billing scheduler.
    Scheduler {
        #[command(subcommand)]
        command: SchedulerCommand,
    },
}

#[derive(Subcommand)]
enum SchedulerCommand {
    /// Print whether an instance owns the scheduler, and per tenant the work due now (the
    /// queue), how late its oldest piece is (the lag), the next piece, and pending charges.
    Status,
}

#[derive(Subcommand)]
enum ProjectionCommand {
    /// Print each projection, its checkpoint and its lag behind the log.
    Status,
    /// Rebuild projections (all when none is named) from the log into fresh tables and swap
    /// them in; the service may keep running.
    Rebuild { names: Vec<String> },
}

#[derive(Subcommand)]
enum MerchantCommand {
    /// Create a merchant and print its id and secret keys (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "sandbox", value_parser = parse_provider)]
        provider: Provider,
        /// Days a past-due subscription has to pay before it is canceled (1 to 60).
        #[arg(long, default_value_t = 7)]
        grace_period_days: i64,
        /// The prefix of the merchant's invoice numbers (ACME gives ACME-0001).
        #[arg(long, default_value = "INV")]
        invoice_prefix: String,
        /// The prefix of its cancellation numbers.
        #[arg(long, default_value = "CAN")]
        cancellation_prefix: String,
        /// The prefix of its credit note numbers.
        #[arg(long, default_value = "CN")]
        credit_note_prefix: String,
        #[command(flatten)]
        stripe: StripeArgs,
        #[command(flatten)]
        dodo: DodoArgs,
    },
}

/// The merchant's Stripe account, for `--provider stripe`. Prefer the environment variables
/// for the secrets: a command line is visible to every user of the machine.
#[derive(clap::Args)]
struct StripeArgs {
    /// Stripe secret key (`sk_test_…` or `sk_live_…`).
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    stripe_secret_key: Option<String>,
    /// Stripe publishable key (`pk_…`), handed to Stripe.js with each setup intent.
    #[arg(long, env = "STRIPE_PUBLISHABLE_KEY")]
    stripe_publishable_key: Option<String>,
    /// Signing secret (`whsec_…`) of the webhook endpoint
    /// `/v1/webhooks/stripe/{merchantId}`.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    stripe_webhook_secret: Option<String>,
    /// Stripe's API; the default is https://api.stripe.com.
    #[arg(long, env = "STRIPE_BASE_URL")]
    stripe_base_url: Option<String>,
}

/// The merchant's Dodo Payments account, for `--provider dodo`.
#[derive(clap::Args)]
struct DodoArgs {
    /// Dodo Payments API key.
    #[arg(long, env = "DODO_PAYMENTS_API_KEY", hide_env_values = true)]
    dodo_api_key: Option<String>,
    /// Signing secret (`whsec_…`) of the webhook endpoint `/v1/webhooks/dodo/{merchantId}`.
    #[arg(long, env = "DODO_PAYMENTS_WEBHOOK_KEY", hide_env_values = true)]
    dodo_webhook_secret: Option<String>,
    /// Which billstream mode the Dodo account serves: Dodo's test and live accounts are apart.
    #[arg(long, env = "DODO_PAYMENTS_MODE", value_parser = ["test", "live"], default_value = "live")]
    dodo_mode: String,
    /// Dodo's API; the default is the public host of `--dodo-mode`.
    #[arg(long, env = "DODO_PAYMENTS_BASE_URL")]
    dodo_base_url: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_json);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let command = cli.command.unwrap_or(Command::Serve {
        addr: std::env::var("BILLSTREAM_ADDR")
            .ok()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        public_url: std::env::var("BILLSTREAM_PUBLIC_URL")
            .ok()
            .and_then(|url| parse_public_url(&url).ok()),
    });
    let pool = connect(&cli.database_url, cli.db_pool).await?;
    match command {
        Command::Serve { addr, public_url } => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            tracing::info!(%addr, database = %redacted(&cli.database_url), "billstream serving");
            let death = std::env::var("BILLSTREAM_DIE_AFTER")
                .ok()
                .and_then(|plan| DeathPlan::parse(&plan));
            let options = server::ServeOptions {
                public_url,
                death,
                ..server::ServeOptions::default()
            };
            server::serve_with(listener, pool, options, server::shutdown_signal())
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        Command::Demo { addr, public_url } => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let public_url = match public_url {
                Some(url) => url,
                None => format!(
                    "http://{}",
                    listener.local_addr().map_err(|e| e.to_string())?
                ),
            };
            let demo = app::App::new(pool.clone())
                .seed_demo()
                .await
                .map_err(|e| format!("cannot create the demo: {e}"))?;
            println!(
                "billstream demo: merchant {} (test mode)",
                demo.merchant.merchant_id
            );
            println!("  secret key   {}", demo.merchant.test_secret_key);
            println!(
                "  portal       {public_url}/portal?session={}",
                demo.session_token
            );
            println!("  (the portal link works for an hour; serving until Ctrl-C)");
            let options = server::ServeOptions {
                public_url: Some(public_url),
                ..server::ServeOptions::default()
            };
            server::serve_with(listener, pool, options, server::shutdown_signal())
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        Command::Migrate => {
            println!("migrated {}", redacted(&cli.database_url));
            Ok(())
        }
        Command::Merchants {
            command:
                MerchantCommand::Create {
                    name,
                    provider,
                    grace_period_days,
                    invoice_prefix,
                    cancellation_prefix,
                    credit_note_prefix,
                    stripe,
                    dodo,
                },
        } => {
            let prefixes = NumberPrefixes {
                invoice: invoice_prefix,
                cancellation: cancellation_prefix,
                credit_note: credit_note_prefix,
            };
            prefixes
                .validate()
                .map_err(|e| format!("cannot create merchant: {e}"))?;
            if !(1..=i64::from(MAX_GRACE_PERIOD_DAYS)).contains(&grace_period_days) {
                return Err(format!(
                    "cannot create merchant: --grace-period-days must be from 1 to {MAX_GRACE_PERIOD_DAYS}"
                ));
            }
            let settings = ProviderSettings {
                provider,
                stripe: StripeSettings {
                    secret_key: stripe.stripe_secret_key,
                    publishable_key: stripe.stripe_publishable_key,
                    webhook_secret: stripe.stripe_webhook_secret,
                    base_url: stripe.stripe_base_url,
                },
                dodo: DodoSettings {
                    api_key: dodo.dodo_api_key,
                    webhook_secret: dodo.dodo_webhook_secret,
                    base_url: dodo.dodo_base_url,
                    mode: Mode::parse(&dodo.dodo_mode).unwrap_or(Mode::Live),
                },
            };
            let merchant = create_merchant_with_providers(&pool, &name, &settings)
                .await
                .map_err(|e| format!("cannot create merchant: {e}"))?;
            set_grace_period_days(&pool, &merchant.merchant_id, grace_period_days)
                .await
                .map_err(|e| format!("cannot create merchant: {e}"))?;
            set_number_prefixes(&pool, &merchant.merchant_id, &prefixes)
                .await
                .map_err(|e| format!("cannot create merchant: {e}"))?;
            println!(
                "{}",
                serde_json::to_string(&merchant).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Projections { command } => projections_command(&pool, command).await,
        Command::Scheduler {
            command: SchedulerCommand::Status,
        } => scheduler_status(pool).await,
    }
}

async fn scheduler_status(pool: PgPool) -> Result<(), String> {
    let status = app::App::new(pool)
        .scheduler_status()
        .await
        .map_err(|e| format!("cannot read the scheduler's status: {e}"))?;
    println!(
        "scheduler: {}",
        if status.owned {
            "owned by a running instance"
        } else {
            "no instance owns it"
        }
    );
    println!(
        "{:<32} {:>8} {:>12} {:<26} {:>8}",
        "tenant", "due now", "lag", "next due", "pending"
    );
    for queue in status.tenants {
        println!(
            "{:<32} {:>8} {:>12} {:<26} {:>8}",
            queue.tenant,
            queue.due_now,
            queue
                .lag
                .map_or("-".to_owned(), |lag| format!("{} s", lag.num_seconds())),
            queue.next_due.map_or("-".to_owned(), |at| at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            queue.pending_charges
        );
    }
    Ok(())
}

async fn projections_command(pool: &PgPool, command: ProjectionCommand) -> Result<(), String> {
    match command {
        ProjectionCommand::Status => {
            let statuses = projections::status::status(pool)
                .await
                .map_err(|e| format!("cannot read projection status: {e}"))?;
            println!(
                "{:<16} {:<8} {:>10} {:>12} {:>8}  owner",
                "projection", "mode", "rows", "checkpoint", "lag"
            );
            for s in statuses {
                println!(
                    "{:<16} {:<8} {:>10} {:>12} {:>8}  {}",
                    s.name,
                    s.mode,
                    s.rows,
                    s.checkpoint,
                    s.lag,
                    if s.owned { "running" } else { "none" }
                );
            }
            Ok(())
        }
        ProjectionCommand::Rebuild { names } => {
            let names: Vec<String> = if names.is_empty() {
                projections::read_models::registry::names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            } else {
                names
            };
            for name in names {
                let progress = progress::RebuildProgress::new(&name);
                let started = std::time::Instant::now();
                let report = rebuild::rebuild(pool, &name, &progress)
                    .await
                    .map_err(|e| format!("cannot rebuild {name}: {e}"))?;
                progress.finish();
                let seconds = started.elapsed().as_secs_f64();
                println!(
                    "rebuilt {}: {} events in {seconds:.1} s ({:.0} events/s), {} more caught up before the swap",
                    report.projection,
                    report.events,
                    report.events as f64 / seconds.max(1e-9),
                    report.caught_up
                );
            }
            Ok(())
        }
    }
}

async fn connect(url: &str, pool_size: u32) -> Result<PgPool, String> {
    connect_and_migrate(url, pool_size)
        .await
        .map_err(|e| e.to_string())
}

/// `--provider`: one of the providers the domain knows.
fn parse_provider(value: &str) -> Result<Provider, String> {
    Provider::parse(value)
        .ok_or_else(|| format!("unknown provider {value:?}: expected one of sandbox, stripe, dodo"))
}

/// `--public-url`: an http:// or https:// URL, kept without a trailing slash.
fn parse_public_url(value: &str) -> Result<String, String> {
    let url = value.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("--public-url must start with http:// or https://, not {value:?}")
        })?;
    if rest.is_empty() || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("--public-url {value:?} names no host"));
    }
    Ok(url.to_owned())
}
