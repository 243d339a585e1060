//! Projections applied with the append itself. An append is one SQL statement: the events'
//! INSERT and every projection's writes as data-modifying CTEs. One round trip, atomic
//! without an explicit transaction, and a unique index a write breaks refuses the whole
//! append.

use cqrs_es::persist::SerializedEvent;
use serde::Deserialize;
use sqlx::{Postgres, QueryBuilder};

/// A projection fed inside the append. It folds the append's events (all of one aggregate,
/// in order) into at most one write per row it owns: the CTEs of one statement must not touch
/// the same row twice, since they all see the database as it was before the statement.
pub trait InlineProjection: Send + Sync {
    /// Stable name, as `billstream projections` shows it.
    fn name(&self) -> &'static str;

    /// Adds this projection's writes for `events` to the append.
    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError>;

    /// The refusal a unique index of this projection stands for, when an append broke it.
    fn refusal(&self, _constraint: &str) -> Option<super::ClaimConflict> {
        None
    }

    /// Whether `constraint` is the key of a row per aggregate (its id): broken, it means another
    /// command created the aggregate first, just as a duplicate `(aggregate, sequence)` does.
    /// PostgreSQL reports whichever of the statement's writes collides first, so this one may
    /// stand where `events_pkey` would have.
    fn is_aggregate_key(&self, _constraint: &str) -> bool {
        false
    }
}

/// Decodes `event` as one of `A`'s events, or `None` for another aggregate's event.
pub(crate) fn decode<A: cqrs_es::Aggregate>(
    event: &SerializedEvent,
) -> Result<Option<A::Event>, serde_json::Error> {
    if event.aggregate_type != A::TYPE {
        return Ok(None);
    }
    Deserialize::deserialize(&event.payload).map(Some)
}

/// The tenant key (`merchant_…:test`) the command bus put in an event's metadata.
pub(crate) fn tenant_of(event: &SerializedEvent) -> Option<String> {
    event
        .metadata
        .get(super::TENANT_METADATA)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

#[derive(Debug, thiserror::Error)]
pub enum InlineProjectionError {
    #[error("cannot decode event: {0}")]
    Decode(#[from] serde_json::Error),
}

/// The append being built: `WITH w0 AS (…), w1 AS (…) SELECT count(*) FROM w0`.
pub struct AppendStatement {
    query: QueryBuilder<'static, Postgres>,
    writes: usize,
}

impl AppendStatement {
    pub(crate) fn new() -> Self {
        Self {
            query: QueryBuilder::new("WITH "),
            writes: 0,
        }
    }

    /// Adds one data-modifying statement (INSERT, UPDATE or DELETE, no semicolon) that
    /// `build` pushes onto the query.
    pub fn write(&mut self, build: impl FnOnce(&mut QueryBuilder<'static, Postgres>)) {
        if self.writes > 0 {
            self.query.push(", ");
        }
        self.query.push(format!("w{} AS (", self.writes));
        build(&mut self.query);
        self.query.push(")");
        self.writes += 1;
    }

    /// Whether any projection added a write (an append always has the events' own).
    pub(crate) fn has_writes(&self) -> bool {
        self.writes > 0
    }

    pub(crate) fn finish(mut self) -> QueryBuilder<'static, Postgres> {
        self.query.push(" SELECT 1");
        self.query
    }
}
