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
    /// Seconds since the key was claimed.
    pub age_seconds: f64,
}

/// Claims a new `key` for a request with `request_hash`; `false` when the key is known.
pub async fn claim_new(
    pool: &PgPool,
    scope: &str,
    key: &str,
    request_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (tenant, key, request_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Takes over `key` from a request of the same hash that never finished (no response after
/// `abandoned_after`); of racing takeovers one wins.
pub async fn take_over(
    pool: &PgPool,
    scope: &str,
    key: &str,
    request_hash: &[u8],
    abandoned_after: Duration,
) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() \
         WHERE tenant = $1 AND key = $2 AND request_hash = $3 AND status_code IS NULL \
           AND created_at < now() - make_interval(secs => $4)",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(abandoned_after.as_secs_f64())
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
    sqlx::query_as(
        "SELECT request_hash, status_code, response_body, \
                extract(epoch FROM now() - created_at)::float8 AS age_seconds \
         FROM idempotency_keys WHERE tenant = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Frees the key: its request did nothing a retry must not repeat.
pub async fn release(pool: &PgPool, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2")
        .bind(scope)
        .bind(key)
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
        "UPDATE idempotency_keys SET status_code = $3, response_body = $4 \
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
