//! Rebuilding `customer_list`: fill a fresh table from the settled events, index it, then,
//! holding off appends for a moment, apply the events that settled since and swap the fresh
//! table in. The service keeps answering from the live table meanwhile.

use futures::TryStreamExt;
use sqlx::{Acquire, PgConnection, PgPool};

use super::lock::RebuildLock;
use super::report::{Progress, RebuildError, RebuildReport};
use super::table_swap::{copy_indexes, serialized, swap};
use cqrs_es::persist::SerializedEvent;

use crate::event_store::append::{AppendStatement, InlineProjection, InlineProjectionError};
use crate::read_models::customer_list::{self, CustomerListProjection, RowChanges};

/// Rows inserted per statement while filling the fresh table (20 columns each: well under
/// PostgreSQL's 65,535 parameters).
const BATCH: usize = 1000;

const FRESH: &str = "customer_list_rebuild";

pub(super) async fn rebuild_customer_list(
    pool: &PgPool,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let mut lock = RebuildLock::take(pool, customer_list::TABLE).await?;
    let result = rebuild_customer_list_locked(pool, &mut lock.connection, progress).await;
    lock.release().await;
    result
}

async fn rebuild_customer_list_locked(
    pool: &PgPool,
    connection: &mut PgConnection,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let live = customer_list::TABLE;
    let fresh = CustomerListProjection::into_table(FRESH);
    sqlx::query(&format!("DROP TABLE IF EXISTS {FRESH}"))
        .execute(&mut *connection)
        .await?;
    // Columns and defaults only: rows go in faster without indexes, which come after.
    sqlx::query(&format!(
        "CREATE TABLE {FRESH} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    ))
    .execute(&mut *connection)
    .await?;

    // Every event of a transaction older than all running ones has settled: this is the cut
    // the fill reads up to. The rest is applied under the lock before the swap.
    let horizon: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(&mut *connection)
            .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Customer' AND transaction_id < $1::xid8",
    )
    .bind(&horizon)
    .fetch_one(&mut *connection)
    .await?;
    progress.started(total as u64);

    let events = fill(pool, &fresh, &horizon, progress).await?;
    copy_indexes(connection, live, FRESH).await?;

    let mut tx = connection.begin().await?;
    // Appends write customer_list, so this waits for those in flight and holds off new ones
    // until the swap commits; reads go on meanwhile.
    sqlx::query(&format!("LOCK TABLE {live} IN EXCLUSIVE MODE"))
        .execute(&mut *tx)
        .await?;
    let late: Vec<SerializedEvent> = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, \
         metadata FROM events \
         WHERE aggregate_type = 'Customer' AND transaction_id >= $1::xid8 ORDER BY position",
    )
    .bind(&horizon)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(serialized)
    .collect::<Result<_, _>>()?;
    for event in &late {
        let mut statement = AppendStatement::new();
        fresh.writes(std::slice::from_ref(event), &mut statement)?;
        statement.finish().build().execute(&mut *tx).await?;
    }
    swap(&mut tx, live, FRESH).await?;
    tx.commit().await?;
    progress.advanced(events + late.len() as u64);
    Ok(RebuildReport {
        projection: customer_list::TABLE,
        events,
        caught_up: late.len() as u64,
    })
}

/// Folds the settled events, one customer at a time, into rows for the fresh table, and
/// inserts them a batch at a time. Inserting runs on a connection and a task of its own, so
/// the database writes one batch while this folds the next.
async fn fill(
    pool: &PgPool,
    projection: &CustomerListProjection,
    horizon: &str,
    progress: &dyn Progress,
) -> Result<u64, RebuildError> {
    let (batches, mut to_insert) = tokio::sync::mpsc::channel::<Vec<RowChanges>>(2);
    let mut insert_connection = pool.acquire().await?;
    let inserter_projection = *projection;
    let inserter = tokio::spawn(async move {
        while let Some(batch) = to_insert.recv().await {
            inserter_projection
                .insert_created(batch, &mut insert_connection)
                .await?;
        }
        Ok::<_, sqlx::Error>(())
    });
    let folded = fold_settled(pool, horizon, progress, &batches).await;
    drop(batches);
    let inserted = inserter
        .await
        .map_err(|e| RebuildError::Database(sqlx::Error::Protocol(e.to_string())))?;
    let folded = folded?;
    inserted?;
    Ok(folded)
}

/// Reads the settled events in key order, so each customer's events arrive together and in
/// sequence, and sends the folded rows on a batch at a time.
async fn fold_settled(
    pool: &PgPool,
    horizon: &str,
    progress: &dyn Progress,
    batches: &tokio::sync::mpsc::Sender<Vec<RowChanges>>,
) -> Result<u64, RebuildError> {
    // The payload as text: decoding it straight into the event skips a JSON tree per event.
    let mut rows = sqlx::query_as::<_, (String, i64, String, String, String)>(
        "SELECT aggregate_id, sequence, event_type, event_version, payload::text FROM events \
         WHERE aggregate_type = 'Customer' AND transaction_id < $1::xid8 \
         ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(horizon)
    .fetch(pool);
    let mut folded = 0u64;
    let mut batch: Vec<RowChanges> = Vec::with_capacity(BATCH);
    let mut current: Option<(String, RowChanges)> = None;
    let closed = || RebuildError::Database(sqlx::Error::PoolClosed);
    while let Some((aggregate_id, sequence, event_type, version, payload)) = rows.try_next().await?
    {
        let event = decode_customer_event(&event_type, &version, &payload)
            .map_err(InlineProjectionError::Decode)?;
        folded += 1;
        match &mut current {
            Some((id, row)) if *id == aggregate_id => row.apply(sequence as usize, event),
            _ => {
                if let Some((id, row)) = current.take() {
                    batch.push(created(id, row)?);
                }
                let mut row = RowChanges::default();
                row.apply(sequence as usize, event);
                current = Some((aggregate_id, row));
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    batches.send(full).await.map_err(|_| closed())?;
                    progress.advanced(folded);
                }
            }
        }
    }
    if let Some((id, row)) = current.take() {
        batch.push(created(id, row)?);
    }
    if !batch.is_empty() {
        batches.send(batch).await.map_err(|_| closed())?;
    }
    progress.advanced(folded);
    Ok(folded)
}

/// A stored Customer event as the current code reads it.
fn decode_customer_event(
    event_type: &str,
    version: &str,
    payload: &str,
) -> Result<domain::customer::CustomerEvent, serde_json::Error> {
    if domain::upcast::is_outdated(event_type, version) {
        let value = serde_json::from_str(payload)?;
        serde_json::from_value(domain::upcast::upcast_payload(event_type, version, value))
    } else {
        serde_json::from_str(payload)
    }
}

/// A customer's row from its whole history, which must begin with its creation.
fn created(id: String, row: RowChanges) -> Result<RowChanges, RebuildError> {
    if row.created() {
        Ok(row)
    } else {
        Err(RebuildError::NoCreation(id))
    }
}
