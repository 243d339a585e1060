use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection};

/// The pool every part of the service shares; callers outside this crate name it from here.
pub use sqlx::PgPool;

/// The schema, from `migrations/`: the only place it is defined.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL ({0})")]
    BadUrl(String),
    #[error("cannot reach PostgreSQL at {url}: {reason}. Start PostgreSQL or set DATABASE_URL to a server that runs.")]
    Unreachable { url: String, reason: String },
    #[error("cannot migrate the database at {url}: {reason}")]
    Migration { url: String, reason: String },
}

/// The URL with any password replaced, fit for a log line or an error message.
pub fn redacted(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(_) => match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((credentials, host)) => {
                    let user = credentials.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}@{host}")
                }
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
        Err(_) => "<invalid url>".to_owned(),
    }
}

/// Connects to the database at `url`, creating it first if the server has no such database,
/// and applies the migrations. `max_connections` sizes the pool.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, DatabaseError> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| DatabaseError::BadUrl(e.to_string()))?;
    let unreachable = |e: sqlx::Error| DatabaseError::Unreachable {
        url: redacted(url),
        reason: e.to_string(),
    };
    create_database_if_missing(&options)
        .await
        .map_err(unreachable)?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: a round trip per query. A
        // broken connection fails its query instead, and the pool drops it.
        .test_before_acquire(false)
        .connect_with(options.disable_statement_logging())
        .await
        .map_err(unreachable)?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| DatabaseError::Migration {
            url: redacted(url),
            reason: e.to_string(),
        })?;
    Ok(pool)
}

async fn create_database_if_missing(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut admin)
            .await
        {
            // Another process created it between our check and our CREATE: that is fine.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            other => {
                other?;
            }
        }
    }
    admin.close().await
}

/// Whether the database answers a trivial query.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(|_| ())
}
