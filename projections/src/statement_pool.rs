//! Connections for the statements that run most, given back without a round trip.
//!
//! sqlx's pool pings every connection it takes back (`PoolConnection::return_to_pool`), to
//! flush whatever a dropped query left behind: a second round trip after every statement,
//! and a wakeup of the server for it. In balance reads that ping was 13% of the process's
//! CPU. The statements that run most — an aggregate's load, an append with its inline read
//! models, a customer or balance read — are each one statement in autocommit, so nothing can
//! be left open, and sqlx's connection drains any answer left unread before it sends its
//! next statement (`wait_until_ready`). Here a connection goes back to the idle list as soon
//! as its statement has answered, with no ping. One whose statement was abandoned half-way
//! (its future dropped) or failed for any reason but the database's own refusal is closed
//! instead, and the next caller opens a fresh one: the cautious case costs a connection, never
//! a wrong answer.
//!
//! It opens connections lazily, with the same options as the pool beside it, and at most half
//! as many (rounded up): the pool beside does the rest of the work, and a process opening
//! twice its configured pool left a benchmark of 32 clients, with a raw pool of 32 beside it,
//! without connections (PostgreSQL's default `max_connections` is 100).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection, PgPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a caller waits for a connection when all are busy, as long as the pool's own.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections for single statements in autocommit; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct StatementPool(Arc<Shared>);

struct Shared {
    /// The pool beside: once it is closed, so is this one.
    beside: PgPool,
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    /// One permit per connection open or being opened.
    permits: Arc<Semaphore>,
}

impl StatementPool {
    /// A pool of half as many connections as `pool` may hold (rounded up), to its database.
    pub fn beside(pool: &PgPool) -> Self {
        let size = pool.options().get_max_connections().div_ceil(2).max(1) as usize;
        Self(Arc::new(Shared {
            beside: pool.clone(),
            options: pool.connect_options().as_ref().clone(),
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        }))
    }

    /// A connection for one statement: an idle one, or a new one. Hand it back with
    /// [`StatementConnection::give_back`] once the statement has answered.
    pub async fn acquire(&self) -> Result<StatementConnection, sqlx::Error> {
        if self.0.beside.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.0.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.0.idle.lock().expect("idle list poisoned").pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.0.options.connect().await?,
        };
        Ok(StatementConnection {
            connection: Some(connection),
            pool: self.0.clone(),
            _permit: permit,
        })
    }

    /// How many connections wait idle (for tests).
    pub fn idle(&self) -> usize {
        self.0.idle.lock().expect("idle list poisoned").len()
    }
}

/// A connection of a [`StatementPool`] for one statement. Dropped without
/// [`give_back`](Self::give_back), as when the caller's future is dropped mid-statement, it is
/// closed rather than reused.
pub struct StatementConnection {
    connection: Option<PgConnection>,
    pool: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl StatementConnection {
    /// Ends the connection's statement, whose outcome was `result`: the connection goes back
    /// idle when the statement answered, or was refused by the database (a broken constraint,
    /// say: the protocol is intact, and the next statement drains the rest of the answer);
    /// otherwise (an I/O or protocol error) it is closed.
    pub fn give_back<T>(mut self, result: &Result<T, sqlx::Error>) {
        let reusable = match result {
            Ok(_) | Err(sqlx::Error::Database(_)) => true,
            // A row that did not decode into the caller's type: the answer was read in full.
            Err(sqlx::Error::ColumnDecode { .. } | sqlx::Error::RowNotFound) => true,
            Err(_) => false,
        };
        if let (true, Some(connection)) = (reusable, self.connection.take()) {
            self.pool
                .idle
                .lock()
                .expect("idle list poisoned")
                .push(connection);
        }
    }
}

impl std::ops::Deref for StatementConnection {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.connection
            .as_ref()
            .expect("a connection until given back")
    }
}

impl std::ops::DerefMut for StatementConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.connection
            .as_mut()
            .expect("a connection until given back")
    }
}
