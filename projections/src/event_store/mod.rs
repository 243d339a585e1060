//! The event store: postgres-es's `events` table as cqrs-es reaches it (appends with their
//! inline read models in one statement, aggregate loads), our own snapshots, and the feed that
//! readers of the whole log page through.

use std::sync::Arc;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::statement_pool::StatementPool;

use self::append::{tenant_of, AppendStatement, InlineProjection, InlineProjectionError};
pub use self::claims::{ClaimConflict, ClaimKind};
use self::columns::{push_unnest, Column};
use self::combined_appends::{AppendCombiner, Combined};

pub mod append;
mod claims;
mod columns;
mod combined_appends;
pub mod customer_changes;
pub mod feed;
pub(crate) mod row_write;
pub mod snapshots;

/// The metadata key under which commands pass their tenant (`merchant_…:test`); the log
/// copies it into the `tenant` column so a tenant's feed is an index range.
pub const TENANT_METADATA: &str = "tenant";

/// billstream's event repository over postgres-es's `events` table: cqrs-es loads and appends
/// through it. An append writes the events and every inline projection's rows in one
/// statement, so read models (and the uniqueness they guard) commit with the events or not at
/// all.
///
/// It offers cqrs-es no snapshots (its 0.5.0 snapshot store applies new events twice); the
/// API's command bus loads from our own `aggregate_snapshots` instead (`snapshots.rs`).
#[derive(Clone)]
pub struct EventLog {
    pool: PgPool,
    /// Appends and loads, each one statement, run here (`statement_pool.rs` says why).
    statements: StatementPool,
    inline: Arc<Vec<&'static dyn InlineProjection>>,
    /// Counts this process's committed appends: the portal's live stream wakes on it.
    appended: Arc<tokio::sync::watch::Sender<u64>>,
    /// Combines appends of some aggregate types (`combined_appends.rs`); none by default.
    combiner: Option<Arc<AppendCombiner>>,
}

const SELECT_EVENTS: &str = "SELECT aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, metadata FROM events";

impl EventLog {
    pub fn new(pool: PgPool, inline: Vec<&'static dyn InlineProjection>) -> Self {
        Self {
            statements: StatementPool::beside(&pool),
            pool,
            inline: Arc::new(inline),
            appended: Arc::new(tokio::sync::watch::Sender::new(0)),
            combiner: None,
        }
    }

    /// Changes each time an append of this log has committed.
    pub fn appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connections of this log's single statements, for other single statements too.
    pub fn statements(&self) -> &StatementPool {
        &self.statements
    }

    /// Appends of `types` that find `lanes` statements of theirs in flight wait and share the
    /// next statement (`combined_appends.rs`); only types whose inline rows each belong to one
    /// aggregate may be named.
    pub fn combining_appends_of(mut self, types: &'static [&'static str], lanes: usize) -> Self {
        self.combiner = Some(Arc::new(AppendCombiner::new(types, lanes)));
        self
    }

    /// How many appends wait for a lane to be combined.
    pub fn appends_waiting(&self) -> usize {
        self.combiner
            .as_ref()
            .map_or(0, |combiner| combiner.waiting())
    }

    /// Appends `events` (one aggregate's, in sequence) and every inline projection's writes
    /// in one statement, shared with other aggregates' appends when their type is combined.
    async fn append(&self, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
        match &self.combiner {
            Some(combiner) if combiner.combines(&events[0].aggregate_type) => {
                combiner.append(self, events).await
            }
            _ => self.append_alone(events).await,
        }
    }

    /// The statement appending each of `appends` (each one aggregate's events, in sequence):
    /// all their events in one INSERT, then every inline projection's writes for each.
    fn statement_of(
        &self,
        appends: &[&[SerializedEvent]],
    ) -> Result<AppendStatement, InlineProjectionError> {
        let mut append = AppendStatement::new();
        let events: Vec<&SerializedEvent> =
            appends.iter().flat_map(|events| events.iter()).collect();
        append.write(|query| {
            query.push(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata, tenant) ",
            );
            if events.len() == 1 {
                query.push_values(events, |mut row, event| {
                    row.push_bind(event.aggregate_type.clone())
                        .push_bind(event.aggregate_id.clone())
                        .push_bind(event.sequence as i64)
                        .push_bind(event.event_type.clone())
                        .push_bind(event.event_version.clone())
                        .push_bind(event.payload.clone())
                        .push_bind(event.metadata.clone())
                        .push_bind(tenant_of(event));
                });
            } else {
                // Several: an array per column, one statement text whatever their number.
                let text = |field: fn(&SerializedEvent) -> &String| {
                    Column::Text(events.iter().map(|e| Some(field(e).clone())).collect())
                };
                let columns = vec![
                    text(|e| &e.aggregate_type),
                    text(|e| &e.aggregate_id),
                    Column::Int(events.iter().map(|e| e.sequence as i64).collect()),
                    text(|e| &e.event_type),
                    text(|e| &e.event_version),
                    Column::Json(events.iter().map(|e| e.payload.clone()).collect()),
                    Column::Json(events.iter().map(|e| e.metadata.clone()).collect()),
                    Column::Text(events.iter().map(|e| tenant_of(e)).collect()),
                ];
                let names = [
                    "aggregate_type",
                    "aggregate_id",
                    "sequence",
                    "event_type",
                    "event_version",
                    "payload",
                    "metadata",
                    "tenant",
                ];
                query.push(format!("SELECT {} FROM ", names.join(", ")));
                push_unnest(query, columns, &names);
            }
        });
        for events in appends {
            for projection in self.inline.iter() {
                projection.writes(events, &mut append)?;
            }
        }
        Ok(append)
    }

    /// Runs an append statement on a connection of the statement pool; a committed one tells
    /// the log's watchers.
    async fn execute(&self, append: AppendStatement) -> Result<(), sqlx::Error> {
        let mut connection = self.statements.acquire().await?;
        let result = append.finish().build().execute(&mut *connection).await;
        connection.give_back(&result);
        result?;
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// Appends `events` in a statement of their own.
    async fn append_alone(&self, events: &[SerializedEvent]) -> Result<(), PersistenceError> {
        let append = self
            .statement_of(&[events])
            .map_err(|InlineProjectionError::Decode(e)| {
                PersistenceError::DeserializationError(Box::new(e))
            })?;
        match self.execute(append).await {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.constraint().is_some() => {
                let constraint = db.constraint().unwrap_or_default().to_owned();
                let same_aggregate = constraint == "events_pkey"
                    || self.inline.iter().any(|p| p.is_aggregate_key(&constraint));
                if same_aggregate {
                    // Another command appended this sequence number (or created this aggregate)
                    // first: cqrs-es turns this into `AggregateConflict`, which callers retry
                    // after loading what the other wrote.
                    return Err(PersistenceError::OptimisticLockError);
                }
                match self.inline.iter().find_map(|p| p.refusal(&constraint)) {
                    Some(refusal) => Err(PersistenceError::UnknownError(Box::new(refusal))),
                    None => Err(connection_error(sqlx::Error::Database(db))),
                }
            }
            Err(e) => Err(connection_error(e)),
        }
    }

    /// Appends each of `appends` (different aggregates') in one statement.
    async fn execute_appends(&self, appends: &[&[SerializedEvent]]) -> Result<(), Combined> {
        let Ok(append) = self.statement_of(appends) else {
            return Err(Combined::Refused);
        };
        match self.execute(append).await {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(_)) => Err(Combined::Refused),
            Err(e) => Err(Combined::Failed(e)),
        }
    }

    /// Appends the events of several aggregates (each slice one aggregate's, in sequence) in
    /// one statement: all of them commit, or none. A flow whose steps on different aggregates
    /// are written at once (a renewal in bulk) needs no record of its progress for them. No
    /// aggregate may be named twice, nor two whose inline rows are the same row (two payments
    /// of one customer share `payment_totals`' row): the statement would be refused.
    pub async fn append_atomically(
        &self,
        appends: &[&[SerializedEvent]],
    ) -> Result<(), AtomicAppendError> {
        match self.execute_appends(appends).await {
            Ok(()) => Ok(()),
            Err(Combined::Refused) => Err(AtomicAppendError::Refused),
            Err(Combined::Failed(e)) => Err(AtomicAppendError::Failed(e)),
        }
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

/// Why [`EventLog::append_atomically`] wrote nothing.
#[derive(Debug)]
pub enum AtomicAppendError {
    /// The database refused the statement (another writer's sequence, a claim taken), or an
    /// inline projection could not build its part: nothing was written.
    Refused,
    /// Anything else, such as a lost connection: whether it committed is unknown.
    Failed(sqlx::Error),
}

fn serialized_event(row: &PgRow) -> Result<SerializedEvent, PersistenceError> {
    let decode = |e: sqlx::Error| PersistenceError::DeserializationError(Box::new(e));
    // Everything that loads an aggregate reads its events as the current version.
    Ok(domain::upcast::upcast(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type").map_err(decode)?,
        aggregate_id: row.try_get("aggregate_id").map_err(decode)?,
        sequence: row.try_get::<i64, _>("sequence").map_err(decode)? as usize,
        event_type: row.try_get("event_type").map_err(decode)?,
        event_version: row.try_get("event_version").map_err(decode)?,
        payload: row.try_get("payload").map_err(decode)?,
        metadata: row.try_get("metadata").map_err(decode)?,
    }))
}

fn connection_error(e: sqlx::Error) -> PersistenceError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        other => PersistenceError::UnknownError(Box::new(other)),
    }
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
