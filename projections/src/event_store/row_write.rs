//! One inline projection's write to one row, folded from an append's events: the whole row
//! when the aggregate is created among them, otherwise an UPDATE of the columns they change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::query_builder::Separated;
use sqlx::{Postgres, QueryBuilder};

use super::append::AppendStatement;
use super::columns::{push_unnest, transpose, Column};

/// A value for one column.
pub(crate) enum Cell {
    Text(Option<String>),
    Time(Option<DateTime<Utc>>),
    Int(i64),
    OptionalInt(Option<i64>),
    Bool(bool),
    Json(Value),
    /// Adds to the column (an UPDATE); a created row starts from it.
    AddInt(i64),
    /// Appends the array's items to a jsonb array column; a created row starts with them.
    AppendJson(Value),
}

impl Cell {
    pub(crate) fn bind(self, query: &mut QueryBuilder<'static, Postgres>) {
        match self {
            Cell::Text(value) => query.push_bind(value),
            Cell::Time(value) => query.push_bind(value),
            Cell::Int(value) => query.push_bind(value),
            Cell::OptionalInt(value) => query.push_bind(value),
            Cell::Bool(value) => query.push_bind(value),
            Cell::Json(value) | Cell::AppendJson(value) => query.push_bind(value),
            Cell::AddInt(value) => query.push_bind(value),
        };
    }

    /// The SET expression of an UPDATE of `column` to this cell.
    fn assign(self, column: &str, query: &mut QueryBuilder<'static, Postgres>) {
        match self {
            Cell::AddInt(value) => {
                query
                    .push(format!("{column} = {column} + "))
                    .push_bind(value);
            }
            Cell::AppendJson(value) => {
                query
                    .push(format!("{column} = {column} || "))
                    .push_bind(value)
                    .push("::jsonb");
            }
            cell => {
                query.push(format!("{column} = "));
                cell.bind(query);
            }
        }
    }

    /// Binds the value as one of a VALUES row's.
    pub(crate) fn bind_value(self, values: &mut Separated<'_, 'static, Postgres, &'static str>) {
        match self {
            Cell::Text(value) => values.push_bind(value),
            Cell::Time(value) => values.push_bind(value),
            Cell::Int(value) => values.push_bind(value),
            Cell::OptionalInt(value) => values.push_bind(value),
            Cell::Bool(value) => values.push_bind(value),
            Cell::Json(value) | Cell::AppendJson(value) => values.push_bind(value),
            Cell::AddInt(value) => values.push_bind(value),
        };
    }

    pub(crate) fn text(value: impl Into<String>) -> Self {
        Cell::Text(Some(value.into()))
    }
}

/// Adds a boolean SQL expression to a write.
pub(crate) type Condition = Box<dyn FnOnce(&mut QueryBuilder<'static, Postgres>)>;

/// The columns an append's events set on one row; later events override earlier ones.
#[derive(Default)]
pub(crate) struct RowWrite {
    pub(crate) created: bool,
    pub(crate) cells: BTreeMap<&'static str, Cell>,
}

impl RowWrite {
    pub(crate) fn set(&mut self, column: &'static str, cell: Cell) {
        self.cells.insert(column, cell);
    }

    /// Adds the row's INSERT (when created) or UPDATE (keyed by `id`) to the append.
    pub(crate) fn push(self, append: &mut AppendStatement, table: &'static str, id: String) {
        self.push_where(append, table, id, None);
    }

    /// Like [`push`](Self::push), writing only where `condition` (a boolean SQL expression
    /// the closure adds) holds; a condition that raises refuses the whole append.
    pub(crate) fn push_where(
        self,
        append: &mut AppendStatement,
        table: &'static str,
        id: String,
        condition: Option<Condition>,
    ) {
        let RowWrite { created, cells } = self;
        if cells.is_empty() {
            return;
        }
        match condition {
            // Written with the other rows of its kind (`AppendStatement::gather`).
            None => append.gather(table, created, id, cells),
            Some(condition) => {
                append.write(|query| push_one(query, table, created, id, cells, Some(condition)))
            }
        }
    }
}

/// A row's cells by column.
pub(crate) type Row = BTreeMap<&'static str, Cell>;

/// How an UPDATE sets a column from its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Assign {
    Set,
    Add,
    AppendJson,
}

impl Cell {
    pub(crate) fn kind(&self) -> Assign {
        match self {
            Cell::AddInt(_) => Assign::Add,
            Cell::AppendJson(_) => Assign::AppendJson,
            _ => Assign::Set,
        }
    }
}

/// Rows written together: one table, created or updated, the same columns set the same way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GatheredKind {
    pub(crate) table: &'static str,
    pub(crate) created: bool,
    pub(crate) columns: Vec<(&'static str, Assign)>,
}

pub(crate) struct GatheredRow {
    /// The row's key, for an update.
    pub(crate) id: String,
    pub(crate) row: Row,
}

/// One row's INSERT (when `created`) or UPDATE (keyed by `id`), where `condition` holds.
pub(crate) fn push_one(
    query: &mut QueryBuilder<'static, Postgres>,
    table: &'static str,
    created: bool,
    id: String,
    cells: Row,
    condition: Option<Condition>,
) {
    if created {
        let columns: Vec<&str> = cells.keys().copied().collect();
        // SELECT rather than VALUES, so that a condition can follow.
        query.push(format!(
            "INSERT INTO {table} ({}) SELECT ",
            columns.join(", ")
        ));
        for (i, cell) in cells.into_values().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            cell.bind(query);
        }
        if let Some(condition) = condition {
            query.push(" WHERE ");
            condition(query);
        }
    } else {
        query.push(format!("UPDATE {table} SET "));
        for (i, (column, cell)) in cells.into_iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            cell.assign(column, query);
        }
        query.push(" WHERE id = ").push_bind(id);
        if let Some(condition) = condition {
            query.push(" AND ");
            condition(query);
        }
    }
}

/// The INSERT of several created rows of one kind: an array per column (`columns.rs`), or
/// one multi-row VALUES when a column mixes types.
pub(crate) fn push_inserts(
    query: &mut QueryBuilder<'static, Postgres>,
    kind: &GatheredKind,
    rows: Vec<GatheredRow>,
) {
    let columns: Vec<&str> = kind.columns.iter().map(|(column, _)| *column).collect();
    query.push(format!(
        "INSERT INTO {} ({}) ",
        kind.table,
        columns.join(", ")
    ));
    match transpose(rows) {
        Ok((_, cells)) => {
            query.push(format!("SELECT {} FROM ", columns.join(", ")));
            push_unnest(query, cells, &columns);
        }
        Err(rows) => {
            query.push_values(rows, |mut values, gathered| {
                for cell in gathered.row.into_values() {
                    cell.bind_value(&mut values);
                }
            });
        }
    }
}

/// The UPDATE of several rows of one kind, each by its id, from an array per column, or from
/// one multi-row VALUES when a column mixes types. (Parameters carry their types, so the
/// columns are typed as the single UPDATE's would be.)
pub(crate) fn push_updates(
    query: &mut QueryBuilder<'static, Postgres>,
    kind: &GatheredKind,
    rows: Vec<GatheredRow>,
) {
    query.push(format!("UPDATE {} AS t SET ", kind.table));
    for (i, (column, assign)) in kind.columns.iter().enumerate() {
        if i > 0 {
            query.push(", ");
        }
        query.push(match assign {
            Assign::Set => format!("{column} = v.{column}"),
            Assign::Add => format!("{column} = t.{column} + v.{column}"),
            Assign::AppendJson => format!("{column} = t.{column} || v.{column}::jsonb"),
        });
    }
    query.push(" FROM ");
    let mut names = vec!["id"];
    names.extend(kind.columns.iter().map(|(column, _)| *column));
    match transpose(rows) {
        Ok((ids, mut cells)) => {
            cells.insert(0, Column::Text(ids.into_iter().map(Some).collect()));
            push_unnest(query, cells, &names);
        }
        Err(rows) => {
            query.push("(");
            query.push_values(rows, |mut values, gathered| {
                values.push_bind(gathered.id);
                for cell in gathered.row.into_values() {
                    cell.bind_value(&mut values);
                }
            });
            query.push(format!(") AS v ({})", names.join(", ")));
        }
    }
    query.push(" WHERE t.id = v.id");
}
