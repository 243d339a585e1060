//! Where each read model stands against the log.

use sqlx::PgPool;

use crate::catch_up;
use crate::read_models::registry::{Feeding, READ_MODELS};

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

/// The standing of every read model in the registry, inline ones first. An inline read model
/// commits with the events it reflects, so its checkpoint is the log's head by construction; a
/// catch-up one stands at its consumer's checkpoint.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let mut statuses = Vec::new();
    for model in READ_MODELS {
        let rows = rows(pool, model.tables[0]).await?;
        let status = match model.feeding {
            Feeding::Inline(_) => ProjectionStatus {
                name: model.name,
                mode: model.mode(),
                rows,
                checkpoint: head,
                lag: 0,
                owned: true,
            },
            Feeding::CatchUp => {
                let (checkpoint, lag) = catch_up::standing(pool, model.name).await?;
                ProjectionStatus {
                    name: model.name,
                    mode: model.mode(),
                    rows,
                    checkpoint,
                    lag,
                    owned: catch_up::owned(pool, model.name).await?,
                }
            }
        };
        statuses.push(status);
    }
    // Inline first, then catch-up, each in registry order (a stable sort).
    statuses.sort_by_key(|status| status.mode != "inline");
    Ok(statuses)
}
