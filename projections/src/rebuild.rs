//! Rebuilding a read model from the log while the service keeps answering: fill a fresh
//! table from the settled events, index it, then, holding off appends for a moment, apply
//! the events that settled since and swap the fresh table in.

use cqrs_es::persist::SerializedEvent;
use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{Acquire, PgConnection, PgPool, Postgres, Row};

use crate::catch_up::CatchUpError;
use crate::catch_up_rebuild;
use crate::customer_list::{self, CustomerListProjection, RowChanges};
use crate::inline::{AppendStatement, InlineProjection, InlineProjectionError};
use crate::{
    inline_rebuild, organization_list, payment_method_list, plan_list, portal_overview,
    subscription_list,
};

/// Read models that can be rebuilt, by name.
pub const PROJECTIONS: &[&str] = &[
    customer_list::TABLE,
    portal_overview::TABLE,
    plan_list::TABLE,
    subscription_list::TABLE,
    payment_method_list::TABLE,
    organization_list::TABLE,
];

/// Rows inserted per statement while filling the fresh table (20 columns each: well under
/// PostgreSQL's 65,535 parameters).
const BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no projection is named {0:?}; known: {known}", known = PROJECTIONS.join(", "))]
    Unknown(String),
    #[error(transparent)]
    Decode(#[from] InlineProjectionError),
    #[error("{0} is being rebuilt by another process; try again when it is done")]
    Busy(&'static str),
    #[error("the log has events of {0} but not its creation")]
    NoCreation(String),
    #[error(transparent)]
    CatchUp(#[from] CatchUpError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub projection: &'static str,
    /// Events folded while filling the fresh table.
    pub events: u64,
    /// Events that settled during the fill, applied just before the swap.
    pub caught_up: u64,
}

/// A rebuild's progress: events folded so far, of about `total`.
pub trait Progress {
    fn started(&self, total: u64);
    fn advanced(&self, done: u64);
}

/// Rebuilds the projection called `name` from position zero and swaps it in.
pub async fn rebuild(
    pool: &PgPool,
    name: &str,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    match name {
        customer_list::TABLE => rebuild_customer_list(pool, progress).await,
        portal_overview::TABLE => catch_up_rebuild::rebuild_portal_overview(pool, progress).await,
        other => match inline_rebuild::IN_PLACE.iter().find(|m| m.name == other) {
            Some(model) => inline_rebuild::rebuild_in_place(pool, model, progress).await,
            None => Err(RebuildError::Unknown(other.to_owned())),
        },
    }
}

const FRESH: &str = "customer_list_rebuild";

/// A projection's rebuild lock, so that of two instances (or two operators) only one rebuilds
/// it at a time. The lock is the session's: it goes with the connection if the process dies,
/// and is released by `release` otherwise.
pub(crate) struct RebuildLock {
    pub(crate) connection: PoolConnection<Postgres>,
    key: String,
}

impl RebuildLock {
    pub(crate) async fn take(pool: &PgPool, name: &'static str) -> Result<Self, RebuildError> {
        let mut connection = pool.acquire().await?;
        let key = format!("billstream.rebuild.{name}");
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(&key)
            .fetch_one(&mut *connection)
            .await?;
        if !locked {
            return Err(RebuildError::Busy(name));
        }
        Ok(Self { connection, key })
    }

    pub(crate) async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&self.key)
            .execute(&mut *self.connection)
            .await;
        if unlocked.is_err() {
            // A connection that may still hold the lock must not go back to the pool.
            self.connection.detach();
        }
    }
}

async fn rebuild_customer_list(
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

/// Gives `fresh` the indexes of `live`, named `<name>_rebuild` until the swap.
pub(crate) async fn copy_indexes(
    connection: &mut PgConnection,
    live: &str,
    fresh: &str,
) -> Result<(), sqlx::Error> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(live)
    .fetch_all(&mut *connection)
    .await?;
    for (name, definition) in indexes {
        let definition = definition
            .replacen(
                &format!("INDEX {name} ON"),
                &format!("INDEX {name}_rebuild ON"),
                1,
            )
            .replacen(&format!(".{live} "), &format!(".{fresh} "), 1);
        sqlx::query(&definition).execute(&mut *connection).await?;
    }
    Ok(())
}

/// Drops `live` and gives `fresh` its name and its index and key names.
pub(crate) async fn swap(
    connection: &mut PgConnection,
    live: &str,
    fresh: &str,
) -> Result<(), sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(live)
    .fetch_all(&mut *connection)
    .await?;
    sqlx::query(&format!("DROP TABLE {live}"))
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!("ALTER TABLE {fresh} RENAME TO {live}"))
        .execute(&mut *connection)
        .await?;
    for name in names {
        sqlx::query(&format!("ALTER INDEX {name}_rebuild RENAME TO {name}"))
            .execute(&mut *connection)
            .await?;
    }
    // The primary key was copied as a unique index; make it the key again.
    sqlx::query(&format!(
        "ALTER TABLE {live} ADD CONSTRAINT {live}_pkey PRIMARY KEY USING INDEX {live}_pkey"
    ))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

pub(crate) fn serialized(row: &PgRow) -> Result<SerializedEvent, sqlx::Error> {
    Ok(domain::upcast::upcast(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get::<i64, _>("sequence")? as usize,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    }))
}
