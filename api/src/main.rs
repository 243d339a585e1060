//! The `billstream` binary: serve the API (the default), migrate, manage merchants.

use std::net::SocketAddr;
use std::process::ExitCode;

use billstream::merchants::{create_merchant, Provider};
use billstream::{server, telemetry};
use clap::{Parser, Subcommand};
use projections::database::{connect_and_migrate, redacted};
use sqlx::PgPool;

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
    /// Largest number of database connections the service opens.
    #[arg(long, global = true, env = "BILLSTREAM_DB_POOL", default_value_t = 32)]
    db_pool: u32,
    /// Log JSON lines instead of text.
    #[arg(long, global = true, env = "BILLSTREAM_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve {
        #[arg(long, env = "BILLSTREAM_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Manage merchants.
    Merchants {
        #[command(subcommand)]
        command: MerchantCommand,
    },
}

#[derive(Subcommand)]
enum MerchantCommand {
    /// Create a merchant and print its id and secret keys (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "sandbox")]
        provider: Provider,
    },
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
    });
    let pool = connect(&cli.database_url, cli.db_pool).await?;
    match command {
        Command::Serve { addr } => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            tracing::info!(%addr, database = %redacted(&cli.database_url), "billstream serving");
            server::serve(listener, pool, server::shutdown_signal())
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        Command::Migrate => {
            println!("migrated {}", redacted(&cli.database_url));
            Ok(())
        }
        Command::Merchants {
            command: MerchantCommand::Create { name, provider },
        } => {
            let merchant = create_merchant(&pool, &name, provider)
                .await
                .map_err(|e| format!("cannot create merchant: {e}"))?;
            println!(
                "{}",
                serde_json::to_string(&merchant).map_err(|e| e.to_string())?
            );
            Ok(())
        }
    }
}

async fn connect(url: &str, pool_size: u32) -> Result<PgPool, String> {
    connect_and_migrate(url, pool_size)
        .await
        .map_err(|e| e.to_string())
}
