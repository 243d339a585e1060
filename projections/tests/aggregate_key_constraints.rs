//! The constraints a read model names as its aggregate's key exist under those names: a
//! collision on one is reported as the aggregate changed meanwhile (a conflict the caller
//! expects), and a renamed constraint would silently turn it into a database failure.

use projections::event_store::append::InlineProjection;
use projections::read_models::document_numbers::DocumentNumbersProjection;
use projections::testing::sqlx::{self, PgPool};
use projections::testing::TestDatabase;

#[tokio::test]
async fn an_invoice_numbered_twice_collides_on_a_constraint_named_as_its_key() {
    let database = TestDatabase::create().await;
    let pool = PgPool::connect(&database.url).await.unwrap();
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint \
         WHERE conname = 'document_numbers_invoice_id_key' \
           AND conrelid = 'document_numbers'::regclass AND contype = 'u')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(exists, "the unique invoice id of document_numbers");
    assert!(DocumentNumbersProjection.is_aggregate_key("document_numbers_invoice_id_key"));
    assert!(!DocumentNumbersProjection.is_aggregate_key("document_numbers_unique"));
}
