//! Rebuilding the small inline read models (plans, subscriptions, payment methods,
//! organizations) in place: in one transaction that holds their tables against appends, empty
//! them and replay their aggregate's whole log through the same writes an append makes.
//! Readers keep seeing the old rows until the commit; appends of that aggregate wait for it.
//! These tables hold one row per billing object, few next to the customers, so the fresh-table
//! swap `customer_list` needs is not worth its machinery here.

use futures::TryStreamExt;
use sqlx::{Connection, PgPool};

use super::lock::RebuildLock;
use super::report::{Progress, RebuildError, RebuildReport};
use super::table_swap::serialized;
use crate::event_store::append::{AppendStatement, InlineProjection};
use crate::read_models::registry::ReadModel;

pub(super) async fn rebuild_in_place(
    pool: &PgPool,
    model: &ReadModel,
    aggregate_type: &'static str,
    projection: &dyn InlineProjection,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let mut lock = RebuildLock::take(pool, model.name).await?;
    let result = replay(
        &mut lock.connection,
        model,
        aggregate_type,
        projection,
        progress,
    )
    .await;
    lock.release().await;
    result
}

async fn replay(
    connection: &mut sqlx::PgConnection,
    model: &ReadModel,
    aggregate_type: &'static str,
    projection: &dyn InlineProjection,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let mut tx = Connection::begin(&mut *connection).await?;
    // Appends write these tables, so this waits for those in flight and holds off new ones
    // until the commit; reads go on meanwhile.
    for table in model.tables {
        sqlx::query(&format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await?;
    }
    for table in model.tables {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1")
        .bind(aggregate_type)
        .fetch_one(&mut *tx)
        .await?;
    progress.started(total as u64);
    // Every event committed before the lock was taken, one aggregate's history at a time.
    let events: Vec<cqrs_es::persist::SerializedEvent> = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, \
         metadata FROM events WHERE aggregate_type = $1 \
         ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(aggregate_type)
    .fetch(&mut *tx)
    .map_ok(|row| serialized(&row))
    .try_collect::<Vec<_>>()
    .await?
    .into_iter()
    .collect::<Result<_, _>>()?;
    let mut done = 0u64;
    for history in events.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
        let mut statement = AppendStatement::new();
        projection.writes(history, &mut statement)?;
        if statement.has_writes() {
            statement.finish().build().execute(&mut *tx).await?;
        }
        done += history.len() as u64;
        progress.advanced(done);
    }
    tx.commit().await?;
    Ok(RebuildReport {
        projection: model.name,
        events: done,
        caught_up: 0,
    })
}
