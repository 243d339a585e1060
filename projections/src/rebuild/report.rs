//! What a rebuild reports: its progress as it goes, what it did, and how it failed.

use crate::catch_up::CatchUpError;
use crate::event_store::append::InlineProjectionError;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("no projection is named {0:?}; known: {known}", known = crate::read_models::registry::names().join(", "))]
    Unknown(String),
    #[error(transparent)]
    Decode(#[from] InlineProjectionError),
    #[error("{0} is being rebuilt by another process; try again when it is done")]
    Busy(&'static str),
    #[error("the log has events of {0} but not its creation")]
    NoCreation(String),
    #[error(transparent)]
    CatchUp(#[from] CatchUpError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub projection: &'static str,
    /// Events folded while filling the fresh table.
    pub events: u64,
    /// Events that settled during the fill, applied just before the swap.
    pub caught_up: u64,
}

/// A rebuild's progress: events folded so far, of about `total`.
pub trait Progress {
    fn started(&self, total: u64);
    fn advanced(&self, done: u64);
}
