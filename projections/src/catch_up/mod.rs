//! Projections fed after the append: a runner reads the log in commit order from the
//! projection's checkpoint and applies each batch in one transaction with the checkpoint that
//! follows it, so an event is applied exactly once whatever crashes in between.
//!
//! One instance owns a projection at a time: the runner holds a session advisory lock on a
//! connection of its own. When that instance dies its connection goes, PostgreSQL drops the
//! lock, and a standby's next attempt takes over from the stored checkpoint.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::event_store::feed::StoredEvent;

mod scan_window;
pub use scan_window::ScanWindow;

/// Events read and applied per transaction.
pub const BATCH: i64 = 500;
/// Events looked at per step, most of them passed over when a consumer reads few types.
pub const SCAN: i64 = 20 * BATCH;
/// How often an owner looks for new events when nobody nudges it: other instances' appends
/// reach it this way.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// How often a standby tries to become the owner.
const STANDBY_POLL: Duration = Duration::from_millis(250);

/// A read model fed from the committed log.
#[async_trait]
pub trait LogConsumer: Send + Sync + 'static {
    /// Stable name: its checkpoint row and its ownership lock go by it.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events it reads; `None`, every event. The others are passed
    /// over without fetching their payloads: a busy credit ledger's usages, say, cost a
    /// consumer of customers nothing but the move of its checkpoint.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Applies `events`, in commit order, inside the runner's transaction `tx`, which also
    /// moves the checkpoint past them.
    async fn apply(
        &self,
        events: &[StoredEvent],
        tx: &mut PgConnection,
    ) -> Result<(), CatchUpError>;
}

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("cannot decode event at position {position}: {source}")]
    Decode {
        position: i64,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Where a projection stands: the last event it applied, in commit order.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    /// The applying transaction's id (`xid8`), as text.
    pub transaction_id: String,
    pub position: i64,
}

/// A log row with the id of the transaction that wrote it.
#[derive(Debug, sqlx::FromRow)]
struct CommittedRow {
    #[sqlx(flatten)]
    event: StoredEvent,
    /// The `xid8` as text, to carry it into the checkpoint; named apart from the column, since
    /// an `ORDER BY transaction_id` would sort by an output column of that name, as text.
    transaction_text: String,
    /// How many events the step moved past: those returned, and the unwanted ones passed over
    /// between them.
    passed: i64,
}

/// The advisory lock key a projection's owner holds.
fn lock_key(name: &str) -> String {
    format!("billstream.catch_up.{name}")
}

/// Reads the checkpoint of `name`; a projection that never ran stands at the log's start.
pub async fn checkpoint(
    connection: &mut PgConnection,
    name: &str,
) -> Result<Checkpoint, sqlx::Error> {
    let stored: Option<Checkpoint> = sqlx::query_as(
        "SELECT transaction_id::text AS transaction_id, position \
         FROM projection_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *connection)
    .await?;
    match stored {
        Some(checkpoint) => Ok(checkpoint),
        None => {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(name)
            .execute(&mut *connection)
            .await?;
            Ok(Checkpoint {
                transaction_id: "0".into(),
                position: 0,
            })
        }
    }
}

/// Applies the next batch of settled events after the checkpoint, with the checkpoint, in
/// one transaction. Answers how many events it moved past (those of aggregate types it does
/// not read among them). `window` is how far it looks, kept from step to step.
pub async fn step(
    connection: &mut PgConnection,
    projection: &dyn LogConsumer,
    window: &mut ScanWindow,
) -> Result<usize, CatchUpError> {
    let name = projection.name();
    // Looking needs no lock: an idle runner polls, and a row lock would cost a transaction id
    // every time.
    let from = checkpoint(connection, name).await?;
    let wanted = projection.aggregate_types();
    // Every event moves the checkpoint; only the wanted ones bring their payload and metadata,
    // and only they count towards the batch: a step looks at up to `window` events and stops
    // at its `BATCH`th wanted one. Of the unwanted it returns just the last looked at, the one the
    // checkpoint moves to: a burst of a busy credit ledger's usages is passed over a window
    // at a time, not a batch at a time (at 500 a step, the portal overview took seconds to
    // pass the benchmark's usages, and every portal read waited for it).
    let rows: Vec<CommittedRow> = sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, metadata, recorded_at, transaction_text, passed \
         FROM ( \
             SELECT counted.*, \
                    lead(position) OVER (ORDER BY transaction_id, position) AS next_position, \
                    count(*) OVER () AS passed \
             FROM ( \
                 SELECT scanned.*, count(*) FILTER (WHERE wanted) \
                            OVER (ORDER BY transaction_id, position) AS wanted_so_far \
                 FROM ( \
                     SELECT position, aggregate_type, aggregate_id, sequence, event_type, \
                            event_version, recorded_at, transaction_id, \
                            transaction_id::text AS transaction_text, \
                            ($4::text[] IS NULL OR aggregate_type = ANY($4)) AS wanted, \
                            CASE WHEN $4::text[] IS NULL OR aggregate_type = ANY($4) \
                                 THEN payload ELSE 'null'::json END AS payload, \
                            CASE WHEN $4::text[] IS NULL OR aggregate_type = ANY($4) \
                                 THEN metadata ELSE 'null'::json END AS metadata \
                     FROM events \
                     WHERE (transaction_id, position) > ($1::xid8, $2) \
                       AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY transaction_id, position \
                     LIMIT $5) scanned) counted \
             WHERE wanted_so_far < $3 OR (wanted_so_far = $3 AND wanted)) taken \
         WHERE wanted OR next_position IS NULL \
         ORDER BY transaction_id, position",
    )
    .bind(&from.transaction_id)
    .bind(from.position)
    .bind(BATCH)
    .bind(wanted.map(<[&str]>::to_vec))
    .bind(if wanted.is_some() {
        window.events()
    } else {
        BATCH
    })
    .fetch_all(&mut *connection)
    .await?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let to = Checkpoint {
        transaction_id: last.transaction_text.clone(),
        position: last.event.position,
    };
    let moved_past = last.passed;
    let passed = usize::try_from(moved_past).unwrap_or(0);
    let events: Vec<_> =
        current_versions(rows.into_iter().map(|row| row.event).filter(|event| {
            wanted.is_none_or(|types| types.contains(&event.aggregate_type.as_str()))
        }));
    *window = window.after(moved_past, events.len() as i64);

    let mut tx = Connection::begin(&mut *connection).await?;
    // Applying does lock: whoever else might apply (a rebuild's swap) waits, and if the
    // checkpoint moved since it was read, this batch is not applied twice.
    let current: Checkpoint = sqlx::query_as(
        "SELECT transaction_id::text AS transaction_id, position \
         FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    if current != from {
        return Ok(0);
    }
    // The batch and its checkpoint commit together, so losing the commit in a crash loses
    // both, and the events are applied again from the checkpoint before: exactly once either
    // way. Nothing waits for the flush to disk, and appends keep the disk to themselves.
    //
    // A consumer looks its rows up by key, and every such lookup has an index; but a table
    // nobody analyzed (autovacuum off, or not run yet) has no statistics, and a plan made on
    // the runner's long-lived connection is kept: PostgreSQL chose whole-table scans, once
    // per batch, ever more costly as the table grew. Inside the batch's transaction only,
    // scans are the last resort, so the plan does not depend on statistics nobody gathers.
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', true), \
                set_config('enable_seqscan', 'off', true)",
    )
    .execute(&mut *tx)
    .await?;
    projection.apply(&events, &mut tx).await?;
    sqlx::query(
        "UPDATE projection_checkpoints \
         SET transaction_id = $2::xid8, position = $3, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(&to.transaction_id)
    .bind(to.position)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(passed)
}

/// Whether events of `tenant` have committed that projection `name` has not applied yet: a
/// read that must see the caller's own writes waits while this holds.
pub async fn behind_for_tenant(
    pool: &PgPool,
    name: &str,
    tenant: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT {}", behind_sql("$1", "$2", None)))
        .bind(name)
        .bind(tenant)
        .fetch_one(pool)
        .await
}

/// The SQL condition "events of tenant `tenant` have committed that projection `name` has not
/// applied yet", for the given parameter placeholders; a read can ask it with its own query.
/// With `types` (a `text[]` placeholder), only events of those aggregate types count: a
/// consumer's reader need not wait for events the consumer passes over.
pub(crate) fn behind_sql(name: &str, tenant: &str, types: Option<&str>) -> String {
    format!(
        "({} OR NOT EXISTS (SELECT 1 FROM projection_checkpoints WHERE name = {name}))",
        unapplied_sql(name, tenant, types, "")
    )
}

/// The SQL condition "events of tenant `tenant` that projection `name` has not applied yet
/// have committed but not settled": a transaction older than them is still running somewhere
/// on the server, and until it ends no runner may apply them.
pub(crate) fn held_back_sql(name: &str, tenant: &str, types: Option<&str>) -> String {
    unapplied_sql(
        name,
        tenant,
        types,
        "AND e.transaction_id >= pg_snapshot_xmin(pg_current_snapshot())",
    )
}

/// Whether an event of `tenant` (of `types`, if given) after `name`'s checkpoint meets
/// `condition`. Its cost is the projection's lag, whatever the log's size: the checkpoint is
/// read first, as values the index scan starts from, and the scan stops at the first event
/// found. (Joined to the checkpoint's row instead, the comparison was a filter, and every
/// read walked all of the tenant's events: a second per portal read after a million usages.
/// As `EXISTS`, the planner of a prepared statement chose a whole-table scan.)
fn unapplied_sql(name: &str, tenant: &str, types: Option<&str>, condition: &str) -> String {
    let of_types = types
        .map(|types| format!("AND e.aggregate_type = ANY({types})"))
        .unwrap_or_default();
    format!(
        "((SELECT true FROM events e \
           WHERE e.tenant = {tenant} {of_types} \
             AND (e.transaction_id, e.position) > \
                 ((SELECT transaction_id FROM projection_checkpoints WHERE name = {name}), \
                  (SELECT position FROM projection_checkpoints WHERE name = {name})) \
             {condition} \
           ORDER BY e.tenant, e.transaction_id, e.position LIMIT 1) IS NOT NULL)"
    )
}

/// A running catch-up projection in this process, to nudge. The default reaches no runner:
/// for tools that use the app's state without serving.
#[derive(Clone, Default)]
pub struct CatchUpRunner {
    nudge: Arc<Notify>,
}

impl CatchUpRunner {
    /// Asks the runner to look for new events now instead of at its next poll.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }
}

/// The runners of one process, stopped together at shutdown.
pub struct CatchUpRunners {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl CatchUpRunners {
    /// Starts one runner per projection: each becomes the owner or waits as a standby.
    pub fn spawn(
        pool: &PgPool,
        projections: Vec<Arc<dyn LogConsumer>>,
    ) -> (Self, Vec<CatchUpRunner>) {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut runners = Vec::new();
        for projection in projections {
            let runner = CatchUpRunner {
                nudge: Arc::new(Notify::new()),
            };
            tasks.push(tokio::spawn(run(
                pool.clone(),
                projection,
                runner.nudge.clone(),
                stopped.clone(),
            )));
            runners.push(runner);
        }
        (Self { stop, tasks }, runners)
    }

    /// Stops every runner and waits until each has let go of its projection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn run(
    pool: PgPool,
    projection: Arc<dyn LogConsumer>,
    nudge: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    let name = projection.name();
    while !*stopped.borrow() {
        let outcome = tokio::select! {
            outcome = own_and_apply(&pool, &*projection, &nudge) => outcome,
            _ = stopped.changed() => break,
        };
        if let Err(e) = outcome {
            tracing::warn!(projection = name, error = %e, "catch-up stopped; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(STANDBY_POLL) => {}
            _ = stopped.changed() => break,
        }
    }
}

/// Becomes the owner of `projection` (waiting as a standby while another instance is), then
/// applies the log as it grows. Returns only on a database error; the connection, and with it
/// the ownership, is gone then.
async fn own_and_apply(
    pool: &PgPool,
    projection: &dyn LogConsumer,
    nudge: &Notify,
) -> Result<(), CatchUpError> {
    // A connection of its own, never returned to the pool: the session lock lives and dies
    // with it.
    let mut connection = pool.acquire().await?.detach();
    let key = lock_key(projection.name());
    loop {
        let owner: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(&key)
            .fetch_one(&mut connection)
            .await?;
        if owner {
            break;
        }
        tokio::time::sleep(STANDBY_POLL).await;
    }
    tracing::info!(projection = projection.name(), "catch-up owner");
    let outcome = apply_forever(&mut connection, projection, nudge).await;
    let _ = connection.close().await;
    outcome
}

async fn apply_forever(
    connection: &mut PgConnection,
    projection: &dyn LogConsumer,
    nudge: &Notify,
) -> Result<(), CatchUpError> {
    let mut window = ScanWindow::default();
    loop {
        let applied = step(&mut *connection, projection, &mut window).await?;
        if applied < BATCH as usize {
            tokio::select! {
                _ = nudge.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
    }
}

/// Whether some process owns projection `name` right now.
pub async fn owned(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid::text::bigint = (hashtext($1)::bigint >> 32) & 4294967295 \
           AND objid::text::bigint = hashtext($1)::bigint & 4294967295)",
    )
    .bind(lock_key(name))
    .fetch_one(pool)
    .await
}

/// Where consumer `name` stands: the position of the last event it applied, and how many
/// events of the log it has yet to apply.
pub async fn standing(pool: &PgPool, name: &str) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT coalesce(c.position, 0), \
                (SELECT count(*) FROM events e \
                 WHERE c.name IS NULL \
                    OR (e.transaction_id, e.position) > (c.transaction_id, c.position)) \
         FROM (SELECT 1) one \
         LEFT JOIN projection_checkpoints c ON c.name = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await
}

/// Events as consumers read them: at their current version (the log keeps what was written).
fn current_versions(events: impl Iterator<Item = StoredEvent>) -> Vec<StoredEvent> {
    events
        .map(|mut event| {
            event.payload = domain::upcast::upcast_payload(
                &event.event_type,
                &event.event_version,
                std::mem::take(&mut event.payload),
            );
            event
        })
        .collect()
}

/// The events of `tenant` that consumer `name` has not applied yet and that have committed,
/// settled or not (a transaction still running elsewhere on the server holds the consumer
/// back, not them), in commit order: what a read that cannot wait for the consumer folds
/// itself, on `connection`, at the checkpoint it reads there.
pub async fn pending_for_tenant(
    connection: &mut PgConnection,
    name: &str,
    tenant: &str,
) -> Result<Vec<StoredEvent>, CatchUpError> {
    let from = checkpoint(connection, name).await?;
    let events: Vec<StoredEvent> = sqlx::query_as(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                payload, metadata, recorded_at \
         FROM events \
         WHERE tenant = $3 AND (transaction_id, position) > ($1::xid8, $2) \
         ORDER BY events.transaction_id, events.position",
    )
    .bind(&from.transaction_id)
    .bind(from.position)
    .bind(tenant)
    .fetch_all(&mut *connection)
    .await?;
    Ok(current_versions(events.into_iter()))
}
