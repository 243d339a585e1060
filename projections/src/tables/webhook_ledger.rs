//! The ledger of provider webhook events already processed, by the provider's own event id:
//! providers deliver at least once, and a redelivery must change nothing.
//!
//! An event is recorded after its effects, not before: an event whose processing failed half
//! way is not marked done, so the provider's retry finishes it. The effects themselves are safe
//! to repeat (a provider's payment method is added once: see the app's `payment_methods`).

use sqlx::PgPool;

/// Whether `event_id` of `provider` was processed for the merchant already.
pub async fn already_processed(
    pool: &PgPool,
    provider: &str,
    merchant_id: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM provider_webhook_events \
         WHERE provider = $1 AND merchant_id = $2 AND event_id = $3)",
    )
    .bind(provider)
    .bind(merchant_id)
    .bind(event_id)
    .fetch_one(pool)
    .await
}

/// Records `event_id` as processed; recording it twice (two deliveries raced) is harmless.
pub async fn record_processed(
    pool: &PgPool,
    provider: &str,
    merchant_id: &str,
    event_id: &str,
    event_type: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider_webhook_events (provider, merchant_id, event_id, event_type) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(provider)
    .bind(merchant_id)
    .bind(event_id)
    .bind(event_type)
    .execute(pool)
    .await?;
    Ok(())
}
