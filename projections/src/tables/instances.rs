//! Which instances of the service are running: each holds a session advisory lock of its own
//! for as long as it lives, on a connection kept for that. PostgreSQL ends the lock with the
//! connection, so an instance killed (`kill -9`, a lost host) is seen gone at once, with no
//! timer to guess by; its unfinished work (flows, keyed requests) may then be taken over.

use sqlx::{Connection, PgConnection, PgPool};

/// The first key of every liveness lock (`pg_advisory_lock(int4, int4)`), "bsin": apart from
/// the one-key locks of customers' turns and catch-up owners.
const LIVENESS_CLASS: i32 = 0x6273_696e;

/// An instance's liveness: the lock, held on its own connection until it is dropped.
pub struct Liveness {
    pub key: i64,
    connection: PgConnection,
}

/// Takes a liveness lock under a fresh key, on a connection of its own to `pool`'s database.
pub async fn hold(pool: &PgPool) -> Result<Liveness, sqlx::Error> {
    let mut connection = PgConnection::connect_with(&pool.connect_options()).await?;
    loop {
        // Non-negative, so that it reads the same as the lock's `objid` (an oid).
        let key = i64::from((uuid::Uuid::new_v4().as_u128() as u32) >> 1);
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LIVENESS_CLASS)
            .bind(key as i32)
            .fetch_one(&mut connection)
            .await?;
        if taken {
            return Ok(Liveness { key, connection });
        }
    }
}

impl Liveness {
    /// Ends the lock now, as a killed process's connection would, but seen at once: dropping
    /// the connection ends it only once the server notices, a moment later.
    pub async fn end(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(LIVENESS_CLASS)
            .bind(self.key as i32)
            .execute(&mut self.connection)
            .await;
        if let Err(e) = unlocked {
            tracing::warn!(error = %e, "cannot end a liveness lock; it ends with its connection");
        }
        let _ = self.connection.close().await;
    }
}

/// Whether the instance of liveness key `key` is running.
pub async fn is_alive(pool: &PgPool, key: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND objsubid = 2 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid = $1::int8::oid AND objid = $2::oid)",
    )
    .bind(i64::from(LIVENESS_CLASS))
    .bind(key)
    .fetch_one(pool)
    .await
}
