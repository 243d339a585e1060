//! Starting a subscription and deleting its customer take turns, across processes: a delete
//! checks for a live subscription and a start checks that the customer is live, and without
//! turns each could pass its check just before the other writes, leaving a deleted customer
//! with a live subscription nobody can reach.
//!
//! Inside a process the turn is a queue per customer (`AggregateLocks`), so at most one request
//! per customer and process holds a database connection while it waits; across processes it
//! is a session advisory lock on that connection, taken from a small pool of its own
//! (`App::lock_connections`) so that turns never hold the connections their work needs.

use std::sync::{Arc, OnceLock};

use domain::tenant::Tenant;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::OwnedMutexGuard;

use crate::aggregate_locks::AggregateLocks;
use crate::error::AppError;

fn local_turns() -> &'static Arc<AggregateLocks> {
    static TURNS: OnceLock<Arc<AggregateLocks>> = OnceLock::new();
    TURNS.get_or_init(|| Arc::new(AggregateLocks::default()))
}

/// A customer's lock (its turn): give it back with [`CustomerLock::end`].
pub struct CustomerLock {
    connection: Option<PoolConnection<Postgres>>,
    key: String,
    _local: OwnedMutexGuard<()>,
}

impl CustomerLock {
    /// Waits for the turn of customer `customer_id` of tenant `tenant`.
    pub async fn take(pool: &PgPool, tenant: &Tenant, customer_id: &str) -> Result<Self, AppError> {
        let key = format!("billstream.customer.{}.{customer_id}", tenant.key());
        let local = local_turns().lock(&key).await;
        let mut connection = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&key)
            .execute(&mut *connection)
            .await?;
        Ok(Self {
            connection: Some(connection),
            key,
            _local: local,
        })
    }

    /// Ends the turn.
    pub async fn end(mut self) {
        if let Some(mut connection) = self.connection.take() {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                .bind(&self.key)
                .execute(&mut *connection)
                .await;
            if unlocked.is_err() {
                // It may still hold the lock: it must not go back to the pool.
                drop(connection.detach());
            }
        }
    }
}

impl Drop for CustomerLock {
    /// A turn dropped without `end` (an early return, a panic) closes its connection, and
    /// PostgreSQL ends the lock with it, rather than lend a locked connection to the pool.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(connection.detach());
        }
    }
}
