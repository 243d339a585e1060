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

/// The tenant's events after `after`, in position order, at most `limit`.
///
/// Positions are handed out when an event is inserted, not when its transaction commits, so
/// an event can become visible after one with a higher position. A reader that remembered
/// the higher position would skip it forever. The feed therefore only returns events whose
/// transaction is older than every transaction still running (`pg_snapshot_xmin`): all
/// events below that line have settled, and a later call never finds a new one behind its
/// cursor.
pub async fn tenant_feed(
    pool: &PgPool,
    tenant: &Tenant,
    after: i64,
    limit: i64,
) -> Result<FeedPage, sqlx::Error> {
    let mut events: Vec<StoredEvent> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events \
         WHERE tenant = $1 AND position > $2 \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY position LIMIT $3"
    ))
    .bind(tenant.key())
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let has_more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    Ok(FeedPage { events, has_more })
}
