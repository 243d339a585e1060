//! One inline projection's write to one row, folded from an append's events: the whole row
//! when the aggregate is created among them, otherwise an UPDATE of the columns they change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::query_builder::Separated;
use sqlx::{Postgres, QueryBuilder};

use super::append::AppendStatement;

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
        append.write(|query| {
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
        });
    }
}
