//! Reading the log as it was written: one aggregate's events, and a tenant's whole feed.

use chrono::{DateTime, Utc};
use domain::tenant::Tenant;
use serde_json::Value;
use sqlx::PgPool;

/// One event as the log holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

const COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, event_type, \
    event_version, payload, metadata, recorded_at";

/// Every event of one aggregate of `tenant`, in sequence; empty for another tenant's.
pub async fn aggregate_events(
    pool: &PgPool,
    tenant: &Tenant,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND tenant = $3 ORDER BY sequence"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(tenant.key())
    .fetch_all(pool)
    .await
}

/// A page of a tenant's feed and whether more events are ready after it.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub events: Vec<StoredEvent>,
    pub has_more: bool,
}

/// The tenant's events after the one at position `after`, in commit order, at most `limit`.
///
/// Positions are handed out when an event is inserted, not when its transaction commits, so
/// an event can become visible after one with a higher position. A reader that remembered
/// the higher position would skip it forever. The feed therefore only returns events whose
/// transaction is older than every transaction still running (`pg_snapshot_xmin`), ordered
/// by (transaction id, position): every transaction that can still commit has a higher id
/// than all of those, so a later call never finds a new event behind its cursor. Ordering by
/// position alone would not do: a transaction can take its id before another and its
/// position after it. Within one transaction, and between transactions that do not
/// overlap, commit order is position order.
pub async fn tenant_feed(
    pool: &PgPool,
    tenant: &Tenant,
    after: i64,
    limit: i64,
) -> Result<FeedPage, sqlx::Error> {
    let tenant = tenant.key();
    // The cursor is the event at `after`; its transaction places it in commit order.
    let cursor: Option<String> = sqlx::query_scalar(
        "SELECT transaction_id::text FROM events WHERE position = $1 AND tenant = $2",
    )
    .bind(after)
    .bind(&tenant)
    .fetch_optional(pool)
    .await?;
    let sql = match cursor {
        Some(_) => format!(
            "SELECT {COLUMNS} FROM events \
             WHERE tenant = $1 AND (transaction_id, position) > ($4::xid8, $2) \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id, position LIMIT $3"
        ),
        // Not a position of this tenant's settled feed (0, say): start after it by position.
        None => format!(
            "SELECT {COLUMNS} FROM events \
             WHERE tenant = $1 AND position > $2 \
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id, position LIMIT $3"
        ),
    };
    let mut query = sqlx::query_as(&sql)
        .bind(&tenant)
        .bind(after)
        .bind(limit + 1);
    if let Some(transaction_id) = cursor {
        query = query.bind(transaction_id);
    }
    let mut events: Vec<StoredEvent> = query.fetch_all(pool).await?;
    let has_more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    Ok(FeedPage { events, has_more })
}

/// Whether flow `flow_id` (or the keyed request of that id) wrote an event of aggregate
/// `aggregate_type` `aggregate_id` at step `step`: a resumed flow skips the step that did.
pub async fn written_by_flow(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    flow_id: &str,
    step: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events \
         WHERE aggregate_type = $1 AND aggregate_id = $2 AND (metadata ->> 'flowId') = $3 \
           AND (metadata ->> 'flowStep') = $4)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(flow_id)
    .bind(step)
    .fetch_one(pool)
    .await
}

/// The ids of the aggregates of `aggregate_type` that flow `flow_id` wrote events of, in the
/// order it first wrote them.
pub async fn aggregates_written_by_flow(
    pool: &PgPool,
    flow_id: &str,
    aggregate_type: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM events \
         WHERE (metadata ->> 'flowId') = $1 AND aggregate_type = $2 \
           AND (metadata ->> 'flowId') IS NOT NULL \
         GROUP BY aggregate_id ORDER BY min(position)",
    )
    .bind(flow_id)
    .bind(aggregate_type)
    .fetch_all(pool)
    .await
}
