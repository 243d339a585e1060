//! Where each read model stands against the log.

use sqlx::PgPool;

use crate::customer_list;

/// One projection's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: &'static str,
    /// How it is fed: `inline` projections are written in the append statement itself.
    pub mode: &'static str,
    pub rows: i64,
    /// The last position the projection reflects.
    pub checkpoint: i64,
    /// The last position in the log.
    pub head: i64,
}

impl ProjectionStatus {
    pub fn lag(&self) -> i64 {
        self.head - self.checkpoint
    }
}

/// The standing of every projection. An inline projection commits with the events it
/// reflects, so its checkpoint is the log's head by construction.
pub async fn status(pool: &PgPool) -> Result<Vec<ProjectionStatus>, sqlx::Error> {
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await?;
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}", customer_list::TABLE))
        .fetch_one(pool)
        .await?;
    Ok(vec![ProjectionStatus {
        name: customer_list::TABLE,
        mode: "inline",
        rows,
        checkpoint: head,
        head,
    }])
}
