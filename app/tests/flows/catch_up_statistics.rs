//! The portal overview's catch-up uses its indexes on a table nobody analyzed: with autovacuum
//! off (as on this machine) a table has no statistics, and a batch's lookup must not scan every
//! row of it.

use std::time::{Duration, Instant};

use projections::catch_up::{self, LogConsumer};
use projections::read_models::portal_overview::PortalOverviewProjection;
use sqlx::{Connection, PgConnection};

use crate::support::Fixture;

/// (sequential scans, index scans) of `portal_overview` as the statistics system has them.
async fn scans(connection: &mut PgConnection) -> (i64, i64) {
    sqlx::query_as(
        "SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_user_tables \
         WHERE relname = 'portal_overview'",
    )
    .fetch_one(&mut *connection)
    .await
    .unwrap()
}

/// The scan counts once everything `worker` did has reached the shared statistics (a backend
/// hands its counts over when it goes idle; this makes it do so now, then waits until the
/// counts stop moving).
async fn settled_scans(worker: &mut PgConnection, observer: &mut PgConnection) -> (i64, i64) {
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut *worker)
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&mut *worker).await.unwrap();
    let mut last = scans(observer).await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = scans(observer).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Applies every event of the log, waiting for those that have not settled yet (an event is
/// read once every transaction older than it has ended, anywhere on the server). Answers how
/// many it applied.
async fn catch_up_fully(
    connection: &mut PgConnection,
    portal: &PortalOverviewProjection,
    pool: &sqlx::PgPool,
) -> usize {
    let started = Instant::now();
    let mut applied = 0;
    let mut window = catch_up::ScanWindow::default();
    loop {
        let step = catch_up::step(connection, portal, &mut window)
            .await
            .unwrap();
        applied += step;
        if step == 0 {
            let (_, lag) = catch_up::standing(pool, portal.name()).await.unwrap();
            if lag == 0 {
                return applied;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the log settles"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_catch_up_batch_looks_rows_up_by_index_without_statistics() {
    let f = Fixture::new().await;
    let mut connection = PgConnection::connect(&f.database.url).await.unwrap();
    sqlx::query("ALTER TABLE portal_overview SET (autovacuum_enabled = false)")
        .execute(&mut connection)
        .await
        .unwrap();
    // The consumer's connection plans its lookups once and keeps the plan, as PostgreSQL does
    // for a statement prepared on a long-lived connection after a few runs: without
    // statistics, nothing ever makes it plan again. Forced here, so the test does not depend
    // on when PostgreSQL would switch.
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut connection)
        .await
        .unwrap();
    let portal = PortalOverviewProjection::default();
    // Many customers' documents, none of them this test's: a scan would read them all.
    sqlx::query(
        "INSERT INTO portal_overview \
         (customer_id, tenant, external_customer_id, aggregate_ids, document) \
         SELECT 'cust_filler' || n, 'merchant_filler:test', 'ext_' || n, \
                ARRAY['cust_filler' || n, 'sub_filler' || n], '{}' \
         FROM generate_series(1, 20000) n",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let analyzed: Option<i64> = sqlx::query_scalar(
        "SELECT analyze_count + autoanalyze_count FROM pg_stat_user_tables \
         WHERE relname = 'portal_overview'",
    )
    .fetch_optional(&mut connection)
    .await
    .unwrap();
    assert_eq!(
        analyzed.unwrap_or(0),
        0,
        "the table must have no statistics"
    );
    // A customer with a card and a subscription: their events are found by the ids their
    // documents show (`aggregate_ids`), the lookup an index must serve.
    let customer = f.customer("fresh@example.com").await;
    let card = f.card(&customer, "4242").await;
    let plan = f.plan().await;
    catch_up_fully(&mut connection, &portal, &f.pool).await;

    let mut observer = PgConnection::connect(&f.database.url).await.unwrap();
    let (seq_before, idx_before) = settled_scans(&mut connection, &mut observer).await;
    f.start(&customer, &plan, Some(&card)).await.unwrap();
    assert!(
        catch_up_fully(&mut connection, &portal, &f.pool).await > 0,
        "the subscription's events"
    );
    let (seq_after, idx_after) = settled_scans(&mut connection, &mut observer).await;
    eprintln!("scans before ({seq_before}, {idx_before}), after ({seq_after}, {idx_after})");
    assert!(idx_after > idx_before, "the batch looked rows up by index");
    assert_eq!(
        seq_after, seq_before,
        "the batch scanned the whole portal_overview table"
    );
}
