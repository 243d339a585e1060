//! Where each read model stands against the log.

use sqlx::PgPool;

use crate::{customer_list, portal_overview};

/// One projection's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: &'static str,
    /// How it is fed: `inline` in the append statement itself, `catch-up` after the commit
    /// from its checkpoint.
    pub mode: &'static str,
    pub rows: i64,
    /// The position of the last event the projection reflects.
    pub checkpoint: i64,
    /// Events in the log it has not applied yet.
    pub lag: i64,
    /// Whether an instance is feeding it now (inline ones are fed by every append).
    pub owned: bool,
}

async fn rows(pool: &PgPool, table: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
}

/// The standing of every projection. An inline projection commits with the events it
/// reflects, so its checkpoint is the log's head by construction.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let mut statuses = vec![ProjectionStatus {
        name: customer_list::TABLE,
        mode: "inline",
        rows: rows(pool, customer_list::TABLE).await?,
        checkpoint: head,
        lag: 0,
        owned: true,
    }];
    for model in crate::inline_rebuild::IN_PLACE {
        statuses.push(ProjectionStatus {
            name: model.name,
            mode: "inline",
            rows: rows(pool, model.tables[0]).await?,
            checkpoint: head,
            lag: 0,
            owned: true,
        });
    }
    let (checkpoint, lag): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(c.position, 0), \
                (SELECT count(*) FROM events e \
                 WHERE c.name IS NULL \
                    OR (e.transaction_id, e.position) > (c.transaction_id, c.position)) \
         FROM (SELECT 1) one \
         LEFT JOIN projection_checkpoints c ON c.name = $1",
    )
    .bind(portal_overview::TABLE)
    .fetch_one(pool)
    .await?;
    let catch_up = ProjectionStatus {
        name: portal_overview::TABLE,
        mode: "catch-up",
        rows: rows(pool, portal_overview::TABLE).await?,
        checkpoint,
        lag,
        owned: crate::catch_up::owned(pool, portal_overview::TABLE).await?,
    };
    statuses.push(catch_up);
    Ok(statuses)
}
