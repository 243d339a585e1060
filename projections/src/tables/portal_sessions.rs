//! Portal sessions: a token (kept as its SHA-256) that lets one customer of one tenant into the
//! portal until it expires.

use chrono::{DateTime, Utc};
use domain::tenant::Tenant;
use sqlx::PgPool;

/// A session that has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub id: String,
    pub tenant: Tenant,
    pub customer_id: String,
    pub external_customer_id: String,
}

/// A session to store.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub token_hash: &'a [u8],
    pub tenant: &'a Tenant,
    pub customer_id: &'a str,
    pub external_customer_id: &'a str,
    pub expires_at: DateTime<Utc>,
    /// The merchant's page to send the customer back to, if it gave one.
    pub return_url: Option<&'a str>,
}

pub async fn insert(pool: &PgPool, session: &NewSession<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO portal_sessions \
         (id, token_hash, tenant, customer_id, external_customer_id, expires_at, return_url) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(session.id)
    .bind(session.token_hash)
    .bind(session.tenant.key())
    .bind(session.customer_id)
    .bind(session.external_customer_id)
    .bind(session.expires_at)
    .bind(session.return_url)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session whose token hashes to `token_hash`, unless it expired by `now`. A stored tenant
/// that no longer parses is `None` too: nobody can act in it.
pub async fn live(
    pool: &PgPool,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<LiveSession>, sqlx::Error> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, tenant, customer_id, external_customer_id FROM portal_sessions \
         WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(
        row.and_then(|(id, tenant, customer_id, external_customer_id)| {
            Some(LiveSession {
                id,
                tenant: Tenant::from_key(&tenant)?,
                customer_id,
                external_customer_id,
            })
        }),
    )
}

/// The session whose token hashes to `token_hash` as the hosted page needs it, in one read:
/// the session if it is live at `now`, and its return URL, expired or not.
pub async fn for_page(
    pool: &PgPool,
    token_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<(Option<LiveSession>, Option<String>), sqlx::Error> {
    let row: Option<(String, String, String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT id, tenant, customer_id, external_customer_id, expires_at > $2, return_url \
         FROM portal_sessions WHERE token_hash = $1",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some((id, tenant, customer_id, external_customer_id, live, return_url)) = row else {
        return Ok((None, None));
    };
    let session = live
        .then(|| {
            Some(LiveSession {
                id,
                tenant: Tenant::from_key(&tenant)?,
                customer_id,
                external_customer_id,
            })
        })
        .flatten();
    Ok((session, return_url))
}

/// The return URL of the session whose token hashes to `token_hash`, expired or not: the page
/// that refuses an expired session still shows the customer the way back.
pub async fn return_url(pool: &PgPool, token_hash: &[u8]) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT return_url FROM portal_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(url,)| url))
}
