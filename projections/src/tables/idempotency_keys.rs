//! `Idempotency-Key` bookkeeping: a key's request hash, then its response once there is one.
//! The rules (who may claim a key, what is replayed) are the app's; this is their storage.

use std::time::Duration;

use sqlx::PgPool;

/// A key's row: the request's hash, then the response once there is one.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredRequest {
    pub request_hash: Vec<u8>,
    pub status_code: Option<i32>,
    pub response_body: Option<Vec<u8>>,
    /// The instance running its request (its liveness key), while there is no response.
    pub holder: Option<i64>,
    /// When the key was first claimed, in Unix milliseconds.
    pub claimed_ms: i64,
}

const CLAIMED_MS: &str = "(extract(epoch FROM created_at) * 1000)::int8";

/// Claims a new `key` for a request with `request_hash`, run by instance `holder`: when it
/// was claimed (Unix milliseconds), or `None` when the key is known.
pub async fn claim_new(
    pool: &PgPool,
    scope: &str,
    key: &str,
    request_hash: &[u8],
    holder: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "INSERT INTO idempotency_keys (tenant, key, request_hash, holder) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, key) DO NOTHING RETURNING {CLAIMED_MS}"
    ))
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(holder)
    .fetch_optional(pool)
    .await
}

/// Takes over `key` from instance `from`, which is gone, for instance `holder`; of racing
/// takeovers one wins.
pub async fn take_over(
    pool: &PgPool,
    scope: &str,
    key: &str,
    from: Option<i64>,
    holder: i64,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET holder = $4 \
         WHERE tenant = $1 AND key = $2 AND status_code IS NULL \
           AND holder IS NOT DISTINCT FROM $3",
    )
    .bind(scope)
    .bind(key)
    .bind(from)
    .bind(holder)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

pub async fn stored(
    pool: &PgPool,
    scope: &str,
    key: &str,
) -> Result<Option<StoredRequest>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT request_hash, status_code, response_body, holder, {CLAIMED_MS} AS claimed_ms \
         FROM idempotency_keys WHERE tenant = $1 AND key = $2"
    ))
    .bind(scope)
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Lets go of the key without a response (its request failed on our side): its retry takes
/// it over at once, and runs it again as a resumed flow.
pub async fn release(
    pool: &PgPool,
    scope: &str,
    key: &str,
    holder: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET holder = NULL \
         WHERE tenant = $1 AND key = $2 AND holder = $3 AND status_code IS NULL",
    )
    .bind(scope)
    .bind(key)
    .bind(holder)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores the response retries of the key get.
pub async fn store_response(
    pool: &PgPool,
    scope: &str,
    key: &str,
    status_code: u16,
    body: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET status_code = $3, response_body = $4, holder = NULL \
         WHERE tenant = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i32::from(status_code))
    .bind(body)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets keys older than `retention`.
pub async fn expire(pool: &PgPool, retention: Duration) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(())
}
