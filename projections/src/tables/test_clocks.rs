//! Test clocks' storage: how far ahead of the wall clock each test-mode tenant's clock runs.
//! The rules (test mode only, never back) are the app's (`app::test_clock`).

use sqlx::PgPool;

/// Every tenant's offset, in microseconds.
pub async fn offsets(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant, offset_us FROM test_clocks")
        .fetch_all(pool)
        .await
}

/// Sets `tenant`'s offset to `offset_us`, unless it is already further ahead (two advances
/// racing: the later time wins). Returns the offset now stored.
pub async fn advance(pool: &PgPool, tenant: &str, offset_us: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO test_clocks (tenant, offset_us) VALUES ($1, $2) \
         ON CONFLICT (tenant) DO UPDATE \
             SET offset_us = greatest(test_clocks.offset_us, EXCLUDED.offset_us), \
                 advanced_at = now() \
         RETURNING offset_us",
    )
    .bind(tenant)
    .bind(offset_us)
    .fetch_one(pool)
    .await
}
