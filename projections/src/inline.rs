use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use sqlx::PgConnection;

/// A projection applied inside the transaction that appends the events, so it is never behind
/// the log and can refuse an append (a uniqueness claim, say) by returning an error.
#[async_trait]
pub trait InlineProjection: Send + Sync {
    /// Stable name, as `billstream projections` shows it.
    fn name(&self) -> &'static str;

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &SerializedEvent,
    ) -> Result<(), InlineProjectionError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InlineProjectionError {
    /// The append would break a uniqueness claim: the command is refused.
    #[error(transparent)]
    Claim(#[from] crate::ClaimConflict),
    #[error("cannot decode event: {0}")]
    Decode(#[from] serde_json::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
