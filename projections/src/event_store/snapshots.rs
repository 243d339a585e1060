//! Aggregate snapshots (migration 0006): a state and the sequence it was folded up to.

use std::collections::HashMap;

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{PgPool, Postgres, Row};

use crate::statement_pool::StatementPool;

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sequence: i64,
    pub state: Value,
}

/// What loading an aggregate reads: its snapshot of `schema` (if any) and the events after it.
pub struct SnapshotAndEvents {
    pub snapshot: Option<Snapshot>,
    /// Upcast to their current versions.
    pub events: Vec<SerializedEvent>,
}

/// The aggregate's snapshot of `schema` and the events after it, in one round trip: loading is
/// most of what a command costs in queries (a renewal loaded some thirty aggregates). It runs
/// on `statements`, whose connections come back without sqlx's ping: one round trip in all.
pub async fn load_with_events(
    statements: &StatementPool,
    aggregate_type: &str,
    aggregate_id: &str,
    schema: i32,
) -> Result<SnapshotAndEvents, PersistenceError> {
    // The snapshot is row `part` 0 (its state as the payload), the events after it rows
    // `part` 1, in order.
    let rows = sqlx::query(
        "WITH snapshot AS ( \
           SELECT sequence, state FROM aggregate_snapshots \
           WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema = $3) \
         SELECT 0 AS part, NULL::text AS aggregate_type, NULL::text AS aggregate_id, sequence, \
                NULL::text AS event_type, NULL::text AS event_version, state AS payload, \
                NULL::json AS metadata FROM snapshot \
         UNION ALL \
         SELECT 1, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, \
                metadata FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 \
           AND sequence > coalesce((SELECT sequence FROM snapshot), 0) \
         ORDER BY part, sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(schema);
    let rows = fetch_all(statements, rows).await?;
    let mut loaded = SnapshotAndEvents {
        snapshot: None,
        events: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        loaded.take(&row)?;
    }
    Ok(loaded)
}

/// The rows of `query`, run on a connection of `statements`.
async fn fetch_all(
    statements: &StatementPool,
    query: Query<'_, Postgres, PgArguments>,
) -> Result<Vec<PgRow>, PersistenceError> {
    let mut connection = statements
        .acquire()
        .await
        .map_err(super::connection_error)?;
    let rows = query.fetch_all(&mut *connection).await;
    connection.give_back(&rows);
    rows.map_err(super::connection_error)
}

impl SnapshotAndEvents {
    /// Takes a row of a load: the snapshot (`part` 0, its state as the payload) or an event
    /// after it.
    fn take(&mut self, row: &PgRow) -> Result<(), PersistenceError> {
        let decode = |e: sqlx::Error| PersistenceError::DeserializationError(Box::new(e));
        if row.try_get::<i32, _>("part").map_err(decode)? == 0 {
            self.snapshot = Some(Snapshot {
                sequence: row.try_get("sequence").map_err(decode)?,
                state: row.try_get("payload").map_err(decode)?,
            });
        } else {
            self.events.push(super::serialized_event(row)?);
        }
        Ok(())
    }
}

/// [`load_with_events`] for each of `aggregate_ids`, in one round trip: what a batch of
/// commands (renewals in bulk) starts from. An id with neither snapshot nor events is absent.
pub async fn load_many_with_events(
    statements: &StatementPool,
    aggregate_type: &str,
    aggregate_ids: &[String],
    schema: i32,
) -> Result<HashMap<String, SnapshotAndEvents>, PersistenceError> {
    // Each id is looked up on its own, by the whole key (a lateral subquery the planner may
    // not flatten: OFFSET 0). With `aggregate_id = ANY($2)` the planner chose by the
    // statistics, and on statistics older than the aggregates (a burst of new subscriptions
    // renewed before autovacuum looked) it scanned every event of the type and filtered:
    // 3,600 events read for 15 wanted, 5 ms a batch.
    let rows = sqlx::query(
        "WITH wanted AS (SELECT DISTINCT unnest($2::text[]) AS aggregate_id), \
         snapshot AS ( \
           SELECT s.aggregate_id, s.sequence, s.state FROM wanted w CROSS JOIN LATERAL ( \
             SELECT aggregate_id, sequence, state FROM aggregate_snapshots \
             WHERE aggregate_type = $1 AND aggregate_id = w.aggregate_id AND schema = $3 \
             OFFSET 0) s) \
         SELECT 0 AS part, $1::text AS aggregate_type, aggregate_id, sequence, \
                NULL::text AS event_type, NULL::text AS event_version, state AS payload, \
                NULL::json AS metadata FROM snapshot \
         UNION ALL \
         SELECT 1, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, \
                e.payload, e.metadata FROM wanted w CROSS JOIN LATERAL ( \
           SELECT * FROM events e \
           WHERE e.aggregate_type = $1 AND e.aggregate_id = w.aggregate_id \
             AND e.sequence > coalesce( \
               (SELECT s.sequence FROM snapshot s WHERE s.aggregate_id = w.aggregate_id), 0) \
           OFFSET 0) e \
         ORDER BY part, aggregate_id, sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .bind(schema);
    let rows = fetch_all(statements, rows).await?;
    let mut loaded: HashMap<String, SnapshotAndEvents> = HashMap::new();
    for row in rows {
        let id: String = row
            .try_get("aggregate_id")
            .map_err(|e| PersistenceError::DeserializationError(Box::new(e)))?;
        loaded
            .entry(id)
            .or_insert_with(|| SnapshotAndEvents {
                snapshot: None,
                events: Vec::new(),
            })
            .take(&row)?;
    }
    Ok(loaded)
}

/// Keeps `state` as the aggregate's snapshot unless a newer one (or one of a newer schema)
/// is already there: two writers racing never move it backwards.
pub async fn save(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    schema: i32,
    snapshot: &Snapshot,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, schema, sequence, state) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
           SET schema = EXCLUDED.schema, sequence = EXCLUDED.sequence, state = EXCLUDED.state, \
               taken_at = now() \
         WHERE (aggregate_snapshots.schema, aggregate_snapshots.sequence) \
             < (EXCLUDED.schema, EXCLUDED.sequence)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(schema)
    .bind(snapshot.sequence)
    .bind(&snapshot.state)
    .execute(pool)
    .await?;
    Ok(())
}
