//! Rebuilding a catch-up projection while the service keeps answering: a fresh table with a
//! checkpoint of its own is fed from position zero by the same code that feeds the live one;
//! then, holding the live checkpoint so its runner waits, the fresh one applies the last
//! settled events, takes the live table's place and hands its checkpoint over.

use sqlx::{Connection, PgConnection, PgPool};

use super::lock::RebuildLock;
use super::report::{Progress, RebuildError, RebuildReport};
use super::table_swap::{copy_indexes, swap};
use crate::catch_up::{self, LogConsumer};
use crate::read_models::portal_overview::{self, PortalOverviewProjection};

const FRESH_TABLE: &str = "portal_overview_rebuild";
const FRESH_CHECKPOINT: &str = "portal_overview.rebuild";

pub(super) async fn rebuild_portal_overview(
    pool: &PgPool,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let mut lock = RebuildLock::take(pool, portal_overview::TABLE).await?;
    let fresh = PortalOverviewProjection::into(FRESH_CHECKPOINT, FRESH_TABLE);
    let result = rebuild_locked(
        &mut lock.connection,
        portal_overview::TABLE,
        FRESH_TABLE,
        &fresh,
        progress,
    )
    .await;
    lock.release().await;
    result
}

async fn rebuild_locked(
    connection: &mut PgConnection,
    live: &'static str,
    fresh_table: &str,
    fresh: &dyn LogConsumer,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    sqlx::query(&format!("DROP TABLE IF EXISTS {fresh_table}"))
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE {fresh_table} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    ))
    .execute(&mut *connection)
    .await?;
    copy_indexes(connection, live, fresh_table).await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(fresh.name())
        .execute(&mut *connection)
        .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut *connection)
        .await?;
    progress.started(total as u64);

    let mut events = 0u64;
    let mut window = catch_up::ScanWindow::default();
    loop {
        let applied = catch_up::step(connection, fresh, &mut window).await? as u64;
        if applied == 0 {
            break;
        }
        events += applied;
        progress.advanced(events);
    }

    let mut tx = Connection::begin(&mut *connection).await?;
    // The live runner applies under this row's lock: it waits until the swap is done, then
    // finds the checkpoint moved and reads on from the fresh table's.
    sqlx::query("SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(live)
        .execute(&mut *tx)
        .await?;
    let mut caught_up = 0u64;
    loop {
        let applied = catch_up::step(&mut tx, fresh, &mut window).await? as u64;
        if applied == 0 {
            break;
        }
        caught_up += applied;
    }
    let reached = catch_up::checkpoint(&mut tx, fresh.name()).await?;
    swap(&mut tx, live, fresh_table).await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, transaction_id, position) \
         VALUES ($1, $2::xid8, $3) \
         ON CONFLICT (name) DO UPDATE SET transaction_id = excluded.transaction_id, \
             position = excluded.position, updated_at = now()",
    )
    .bind(live)
    .bind(&reached.transaction_id)
    .bind(reached.position)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
        .bind(fresh.name())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    progress.advanced(events + caught_up);
    Ok(RebuildReport {
        projection: live,
        events,
        caught_up,
    })
}
