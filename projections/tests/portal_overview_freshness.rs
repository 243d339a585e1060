//! A portal overview read waits for the events the overview shows, and only for those: a busy
//! credit ledger's usages, which the overview passes over, never make a page wait.

use domain::tenant::{Mode, Tenant};
use projections::read_models::portal_overview::{PortalLookup, PortalOverviewProjection, TABLE};
use projections::testing::sqlx::{self, PgPool};
use projections::testing::TestDatabase;

async fn append(pool: &PgPool, aggregate_type: &str, aggregate_id: &str, tenant: &Tenant) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata, tenant) \
         VALUES ($1, $2, 1, 'Happened', '1', '{}', '{}', $3)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(tenant.key())
    .execute(pool)
    .await
    .unwrap();
}

/// Moves the overview's checkpoint past every event, as its runner would.
async fn caught_up(pool: &PgPool) {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, transaction_id, position) \
         SELECT $1, transaction_id, position FROM events \
         ORDER BY transaction_id DESC, position DESC LIMIT 1 \
         ON CONFLICT (name) DO UPDATE \
         SET transaction_id = excluded.transaction_id, position = excluded.position",
    )
    .bind(TABLE)
    .execute(pool)
    .await
    .unwrap();
}

async fn behind(pool: &PgPool, tenant: &Tenant) -> bool {
    PortalOverviewProjection::read(pool, tenant, &PortalLookup::Id("cus_nobody"))
        .await
        .unwrap()
        .behind
}

#[tokio::test]
async fn a_read_waits_for_the_types_the_overview_shows_and_not_for_credit_usage() {
    let database = TestDatabase::create().await;
    let pool = PgPool::connect(&database.url).await.unwrap();
    let tenant = Tenant::new("merchant_a", Mode::Test);
    append(&pool, "Customer", "cus_1", &tenant).await;
    caught_up(&pool).await;
    assert!(!behind(&pool, &tenant).await, "caught up");

    append(&pool, "CreditLedger", "cus_1:api_calls", &tenant).await;
    assert!(
        !behind(&pool, &tenant).await,
        "a usage the overview does not show is nothing to wait for"
    );

    append(&pool, "Subscription", "sub_1", &tenant).await;
    assert!(behind(&pool, &tenant).await, "a subscription's change is");
    caught_up(&pool).await;
    assert!(!behind(&pool, &tenant).await);

    append(
        &pool,
        "Customer",
        "cus_2",
        &Tenant::new("merchant_b", Mode::Test),
    )
    .await;
    assert!(
        !behind(&pool, &tenant).await,
        "another tenant's change is not this tenant's to wait for"
    );
}
