//! One rebuild of a read model at a time, across instances.

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use super::report::RebuildError;

/// A projection's rebuild lock, so that of two instances (or two operators) only one rebuilds
/// it at a time. The lock is the session's: it goes with the connection if the process dies,
/// and is released by `release` otherwise.
pub(crate) struct RebuildLock {
    pub(crate) connection: PoolConnection<Postgres>,
    key: String,
}

impl RebuildLock {
    pub(crate) async fn take(pool: &PgPool, name: &'static str) -> Result<Self, RebuildError> {
        let mut connection = pool.acquire().await?;
        let key = format!("billstream.rebuild.{name}");
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(&key)
            .fetch_one(&mut *connection)
            .await?;
        if !locked {
            return Err(RebuildError::Busy(name));
        }
        Ok(Self { connection, key })
    }

    pub(crate) async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&self.key)
            .execute(&mut *self.connection)
            .await;
        if unlocked.is_err() {
            // A connection that may still hold the lock must not go back to the pool.
            self.connection.detach();
        }
    }
}
