//! Aggregate snapshots (migration 0006): a state and the sequence it was folded up to.

use serde_json::Value;
use sqlx::PgPool;

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub sequence: i64,
    pub state: Value,
}

/// The aggregate's snapshot written by code of `schema`, if there is one.
pub async fn load(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    schema: i32,
) -> Result<Option<Snapshot>, sqlx::Error> {
    let row: Option<(i64, Value)> = sqlx::query_as(
        "SELECT sequence, state FROM aggregate_snapshots \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND schema = $3",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(schema)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(sequence, state)| Snapshot { sequence, state }))
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
