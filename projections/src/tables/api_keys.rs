//! Secret keys, by the SHA-256 of the key: a key is shown once, when it is made.

use domain::tenant::{Mode, Tenant};
use sqlx::PgPool;

/// A known key: its id and the tenant it acts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant: Tenant,
}

/// The key whose secret hashes to `secret_hash`, if any.
pub async fn by_hash(pool: &PgPool, secret_hash: &[u8]) -> Result<Option<ApiKey>, sqlx::Error> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT id, merchant_id, mode FROM api_keys WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|(id, merchant_id, mode)| {
        Some(ApiKey {
            id,
            tenant: Tenant::new(merchant_id, Mode::parse(&mode)?),
        })
    }))
}
