//! The log as the portal's live stream reads it: which customer each event concerns, in
//! commit order, without payloads.
//!
//! Commit order is the feed's (`feed.rs`): (transaction id, position), and only events whose
//! transaction is older than every transaction still running ("settled"). A position alone is
//! no cursor: an event with a lower position can commit after one with a higher. A settled
//! cursor never finds a new event behind it, so a reader that resumes from one misses nothing.

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

fn columns() -> String {
    format!(
        "e.transaction_id::text::bigint AS transaction_id, e.position, e.tenant, \
         {CUSTOMER_OF_EVENT} AS customer_id, e.aggregate_type, e.aggregate_id, e.event_type, \
         e.recorded_at"
    )
}

/// The last settled event of the log: a reader starting now starts after it.
pub async fn head(pool: &PgPool) -> Result<CommitCursor, sqlx::Error> {
    let last: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, position FROM events \
         WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY transaction_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(last.map_or(CommitCursor::START, |(transaction_id, position)| {
        CommitCursor {
            transaction_id,
            position,
        }
    }))
}

/// Where the event at `position` stands in commit order; `None` when there is no such event.
pub async fn cursor_of(pool: &PgPool, position: i64) -> Result<Option<CommitCursor>, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT transaction_id::text::bigint FROM events WHERE position = $1",
    )
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
        "SELECT {columns}, e.transaction_id < pg_snapshot_xmin(pg_current_snapshot()) AS settled \
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
