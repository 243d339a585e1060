use std::sync::Arc;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::inline::{InlineProjection, InlineProjectionError};

/// Which uniqueness claim an append ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    Email,
    ExternalId,
}

/// An append refused because another live customer of the tenant holds the same claim. It
/// reaches the caller inside `AggregateError::UnexpectedError`; the API downcasts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} is claimed by another customer")]
pub struct ClaimConflict {
    pub kind: ClaimKind,
}

/// The metadata key under which commands pass their tenant (`merchant_…:test`); the log
/// copies it into the `tenant` column so a tenant's feed is an index range.
pub const TENANT_METADATA: &str = "tenant";

/// billstream's event repository over postgres-es's `events` table: cqrs-es loads and appends
/// through it. An append writes the events and runs every inline projection in one
/// transaction, so claims and read models commit with the events or not at all.
///
/// Snapshots are not offered: cqrs-es 0.5.0's snapshot store applies new events twice.
#[derive(Clone)]
pub struct EventLog {
    pool: PgPool,
    inline: Arc<Vec<Box<dyn InlineProjection>>>,
}

const SELECT_EVENTS: &str = "SELECT aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata FROM events";

impl EventLog {
    pub fn new(pool: PgPool, inline: Vec<Box<dyn InlineProjection>>) -> Self {
        Self {
            pool,
            inline: Arc::new(inline),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn append(&self, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
        let mut tx = self.pool.begin().await.map_err(connection_error)?;
        for event in events {
            let tenant = event.metadata.get(TENANT_METADATA).and_then(Value::as_str);
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata, tenant) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence as i64)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(&event.payload)
            .bind(&event.metadata)
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .map_err(append_error)?;
        }
        for event in events {
            for projection in self.inline.iter() {
                projection
                    .apply(&mut tx, event)
                    .await
                    .map_err(|e| match e {
                        InlineProjectionError::Claim(claim) => {
                            PersistenceError::UnknownError(Box::new(claim))
                        }
                        InlineProjectionError::Decode(e) => {
                            PersistenceError::DeserializationError(Box::new(e))
                        }
                        InlineProjectionError::Database(e) => append_error(e),
                    })?;
            }
        }
        tx.commit().await.map_err(append_error)
    }

    async fn select(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 \
             ORDER BY sequence"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence)
        .fetch_all(&self.pool)
        .await
        .map_err(connection_error)?;
        rows.iter().map(serialized_event).collect()
    }

    fn stream(&self, aggregate_type: String, aggregate_id: Option<String>) -> ReplayStream {
        let (mut feed, stream) = ReplayStream::new(256);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let sql = match aggregate_id {
                Some(_) => format!(
                    "{SELECT_EVENTS} WHERE aggregate_type = $1 AND aggregate_id = $2 \
                     ORDER BY sequence"
                ),
                None => format!("{SELECT_EVENTS} WHERE aggregate_type = $1 ORDER BY position"),
            };
            let mut query = sqlx::query(&sql).bind(aggregate_type);
            if let Some(id) = aggregate_id {
                query = query.bind(id);
            }
            let mut rows = query.fetch(&pool);
            loop {
                let next = match rows.try_next().await {
                    Ok(Some(row)) => serialized_event(&row),
                    Ok(None) => return,
                    Err(e) => Err(connection_error(e)),
                };
                let failed = next.is_err();
                if feed.push(next).await.is_err() || failed {
                    return;
                }
            }
        });
        stream
    }
}

fn serialized_event(row: &PgRow) -> Result<SerializedEvent, PersistenceError> {
    let decode = |e: sqlx::Error| PersistenceError::DeserializationError(Box::new(e));
    Ok(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type").map_err(decode)?,
        aggregate_id: row.try_get("aggregate_id").map_err(decode)?,
        sequence: row.try_get::<i64, _>("sequence").map_err(decode)? as usize,
        event_type: row.try_get("event_type").map_err(decode)?,
        event_version: row.try_get("event_version").map_err(decode)?,
        payload: row.try_get("payload").map_err(decode)?,
        metadata: row.try_get("metadata").map_err(decode)?,
    })
}

fn connection_error(e: sqlx::Error) -> PersistenceError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

/// A duplicate (aggregate, sequence) means another command appended first: cqrs-es turns
/// that into `AggregateConflict`, which callers retry.
fn append_error(e: sqlx::Error) -> PersistenceError {
    if let sqlx::Error::Database(db) = &e {
        if db.constraint() == Some("events_pkey") {
            return PersistenceError::OptimisticLockError;
        }
    }
    connection_error(e)
}

impl PersistedEventRepository for EventLog {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select(A::TYPE, aggregate_id, -1).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.select(A::TYPE, aggregate_id, last_sequence as i64)
            .await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if events.is_empty() {
            return Ok(());
        }
        self.append(events).await
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        Ok(self.stream(A::TYPE.to_owned(), Some(aggregate_id.to_owned())))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        Ok(self.stream(A::TYPE.to_owned(), None))
    }
}
