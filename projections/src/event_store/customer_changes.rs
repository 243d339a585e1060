//! The log as the portal's live stream reads it: which customer each event concerns, in
//! commit order, without payloads.
//!
//! Commit order is the feed's (`feed.rs`): (transaction id, position), and only events whose
//! transaction is older than every transaction still running ("settled"). A position alone is
//! no cursor: an event with a lower position can commit after one with a higher. A settled
//! cursor never finds a new event behind it, so a reader that resumes from one misses nothing.
//!
//! Settled here means: older than every transaction still running *in this database*
//! (`LOCAL_HORIZON`). Transaction ids are server-wide, and the feed waits for every
//! transaction of the server; but one of another database never writes this log, and a long
//! one (a migration, a batch job, another service's work) would hold every page's live
//! updates back for as long as it runs.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// A place in commit order: the transaction that wrote an event, and the event's position.
/// Ordered as commit order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct CommitCursor {
    /// The writing transaction's `xid8` (it fits an `i64`: the epoch is far from 2^31).
    pub transaction_id: i64,
    pub position: i64,
}

impl CommitCursor {
    /// Before every event of the log.
    pub const START: CommitCursor = CommitCursor {
        transaction_id: 0,
        position: 0,
    };
}

/// One committed event, as the live stream tells it: where it is, whose it is, what it was.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CustomerChange {
    pub transaction_id: i64,
    pub position: i64,
    pub tenant: Option<String>,
    /// The customer the event concerns; `None` for events of no one customer (plans).
    pub customer_id: Option<String>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
}

impl CustomerChange {
    pub fn cursor(&self) -> CommitCursor {
        CommitCursor {
            transaction_id: self.transaction_id,
            position: self.position,
        }
    }
}

/// The customer an event of the log (`e`) concerns, in SQL. A customer's own events are
/// keyed by it, and a credit ledger by "{customer}/{feature}". Every other aggregate a
/// customer owns names the customer in its first event (`customerId`; an organization's
/// `primaryCustomerId`), and a member added to an organization names the member: the event's
/// own payload first, then the first event of its aggregate, one primary-key lookup. The log,
/// not a read model, answers, so it holds for any aggregate that names its customer so, and
/// for rows a read model has since deleted.
const CUSTOMER_OF_EVENT: &str = "CASE e.aggregate_type \
       WHEN 'Customer' THEN e.aggregate_id \
       WHEN 'CreditLedger' THEN split_part(e.aggregate_id, '/', 1) \
       ELSE coalesce( \
         (SELECT coalesce(v ->> 'customerId', v ->> 'primaryCustomerId') \
          FROM json_each(e.payload) AS own(k, v)), \
         (SELECT coalesce(v ->> 'customerId', v ->> 'primaryCustomerId') \
          FROM events f, json_each(f.payload) AS first(k, v) \
          WHERE f.aggregate_type = e.aggregate_type AND f.aggregate_id = e.aggregate_id \
            AND f.sequence = 1)) \
     END";

/// The oldest transaction id that may still write to this database's log, in SQL: the
/// lowest of the transactions running at the statement's snapshot that is not known to be
/// another database's (a session never changes database, so one that shows the id is its
/// owner), or the snapshot's first unassigned id when there is none. One that ended since
/// the snapshot counts as ours: the next read sees it.
const LOCAL_HORIZON: &str = "(SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot())) \
     FROM pg_snapshot_xip(pg_current_snapshot()) AS x \
     WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
                       WHERE a.backend_xid = xid(x) AND a.datname <> current_database()))";

fn columns() -> String {
    format!(
        "e.transaction_id::text::bigint AS transaction_id, e.position, e.tenant, \
         {CUSTOMER_OF_EVENT} AS customer_id, e.aggregate_type, e.aggregate_id, e.event_type, \
         e.recorded_at"
    )
}

/// The last settled event of the log (a reader starting now starts after it), and whether
/// events have committed after it that are not settled yet.
///
/// This read once took 75 ms on a busy log and kept a core of PostgreSQL busy: its ORDER BY
/// named the output column (`transaction_id` as text as bigint), which no index holds, so
/// every event was sorted; and the horizon, computed in the statement, is hidden from the
/// planner, which guessed a third of the log past it and scanned the whole table for one.
/// The ORDER BY now names the table's columns, and inside this read's transaction only scans
/// are the last resort, so both halves walk the commit-order index.
pub async fn head(pool: &PgPool) -> Result<(CommitCursor, bool), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('enable_seqscan', 'off', true)")
        .execute(&mut *tx)
        .await?;
    let (transaction_id, position, held_back): (Option<i64>, Option<i64>, bool) =
        sqlx::query_as(&format!(
            "SELECT last.transaction_id, last.position, \
                    EXISTS (SELECT 1 FROM events WHERE transaction_id >= h.horizon) \
             FROM (SELECT {LOCAL_HORIZON} AS horizon) h LEFT JOIN LATERAL ( \
                 SELECT e.transaction_id::text::bigint AS transaction_id, e.position \
                 FROM events e WHERE e.transaction_id < h.horizon \
                 ORDER BY e.transaction_id DESC, e.position DESC LIMIT 1) last ON true"
        ))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let head = match (transaction_id, position) {
        (Some(transaction_id), Some(position)) => CommitCursor {
            transaction_id,
            position,
        },
        _ => CommitCursor::START,
    };
    Ok((head, held_back))
}

/// Where the event at `position` stands in commit order; `None` when there is no such event.
pub async fn cursor_of(pool: &PgPool, position: i64) -> Result<Option<CommitCursor>, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT transaction_id::text::bigint FROM events WHERE position = $1")
            .bind(position)
            .fetch_optional(pool)
            .await?;
    Ok(found.map(|transaction_id| CommitCursor {
        transaction_id,
        position,
    }))
}

/// What a tailer reads after its cursor: the settled events, in commit order, and whether
/// events have committed after them that are not settled yet (a transaction older than
/// them is still running somewhere on the server).
#[derive(Debug, Default)]
pub struct TailRead {
    pub settled: Vec<CustomerChange>,
    pub held_back: bool,
}

/// Every tenant's events after `after`, in commit order, at most `limit` of them.
pub async fn settled_after(
    connection: &mut PgConnection,
    after: CommitCursor,
    limit: i64,
) -> Result<TailRead, sqlx::Error> {
    // Settled rows sort before unsettled ones (their transaction ids are lower), so one read
    // answers both what to publish and whether to look again soon.
    let sql = format!(
        "SELECT {columns}, e.transaction_id < {LOCAL_HORIZON} AS settled \
         FROM events e \
         WHERE (e.transaction_id, e.position) > ($1::text::xid8, $2) \
         ORDER BY e.transaction_id, e.position LIMIT $3",
        columns = columns()
    );
    let rows: Vec<TailRow> = sqlx::query_as(&sql)
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(limit)
        .fetch_all(&mut *connection)
        .await?;
    let mut read = TailRead::default();
    for row in rows {
        if !row.settled {
            read.held_back = true;
            break;
        }
        read.settled.push(row.change);
    }
    Ok(read)
}

#[derive(sqlx::FromRow)]
struct TailRow {
    #[sqlx(flatten)]
    change: CustomerChange,
    settled: bool,
}

/// The events of `tenant` concerning `customer_id` after `after` and up to `upto`, both in
/// commit order, at most `limit`: what a stream resuming from `after` missed, up to where
/// its live part begins. Everything up to `upto` is settled (a tailer read it so), so this
/// range will never grow.
pub async fn customer_changes_between(
    pool: &PgPool,
    tenant: &str,
    customer_id: &str,
    after: CommitCursor,
    upto: CommitCursor,
    limit: i64,
) -> Result<Vec<CustomerChange>, sqlx::Error> {
    let sql = format!(
        "SELECT {columns} FROM events e \
         WHERE e.tenant = $1 \
           AND (e.transaction_id, e.position) > ($2::text::xid8, $3) \
           AND (e.transaction_id, e.position) <= ($4::text::xid8, $5) \
           AND ({CUSTOMER_OF_EVENT}) = $6 \
         ORDER BY e.transaction_id, e.position LIMIT $7",
        columns = columns()
    );
    sqlx::query_as(&sql)
        .bind(tenant)
        .bind(after.transaction_id)
        .bind(after.position)
        .bind(upto.transaction_id)
        .bind(upto.position)
        .bind(customer_id)
        .bind(limit)
        .fetch_all(pool)
        .await
}
