//! Projections applied with the append itself. An append is one SQL statement: the events'
//! INSERT and every projection's writes as data-modifying CTEs. One round trip, atomic
//! without an explicit transaction, and a unique index a write breaks refuses the whole
//! append.

use std::collections::BTreeMap;

use cqrs_es::persist::SerializedEvent;
use serde::Deserialize;
use sqlx::{Postgres, QueryBuilder};

use super::row_write::{push_inserts, push_one, push_updates, GatheredKind, GatheredRow, Row};

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
    /// Row writes without a condition, by table and columns, written at the end: the rows of
    /// one kind as one CTE (`row_write.rs`). A batch of renewals wrote some 300 CTEs, one per
    /// row, and PostgreSQL spent longer planning them than running them.
    gathered: BTreeMap<GatheredKind, Vec<GatheredRow>>,
}

impl AppendStatement {
    pub(crate) fn new() -> Self {
        Self {
            query: QueryBuilder::new("WITH "),
            writes: 0,
            gathered: BTreeMap::new(),
        }
    }

    /// Keeps `row` (of `table`: created, or an update of row `id`) to be written together
    /// with the others of its kind when the statement is finished.
    pub(crate) fn gather(&mut self, table: &'static str, created: bool, id: String, row: Row) {
        let kind = GatheredKind {
            table,
            created,
            columns: row
                .keys()
                .map(|column| (*column, row[column].kind()))
                .collect(),
        };
        self.gathered
            .entry(kind)
            .or_default()
            .push(GatheredRow { id, row });
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
        self.writes > 0 || !self.gathered.is_empty()
    }

    pub(crate) fn finish(mut self) -> QueryBuilder<'static, Postgres> {
        for (kind, mut rows) in std::mem::take(&mut self.gathered) {
            if rows.len() == 1 {
                let GatheredRow { id, row } = rows.remove(0);
                self.write(|query| push_one(query, kind.table, kind.created, id, row, None));
            } else if kind.created {
                self.write(|query| push_inserts(query, &kind, rows));
            } else {
                self.write(|query| push_updates(query, &kind, rows));
            }
        }
        self.query.push(" SELECT 1");
        self.query
    }
}
