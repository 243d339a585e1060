//! Many rows of one kind as one array per column: `INSERT … SELECT * FROM unnest($1, $2, …)`
//! and `UPDATE … FROM unnest(…)`. A multi-row VALUES binds one parameter per cell, and a
//! batch of 64 renewals bound some 4,000; PostgreSQL planned that statement anew on every
//! batch (its text changes with the row count), and the planning cost more than half of its
//! execution. Arrays keep the statement's text, and so its plan, the same whatever the
//! number of rows.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};

use super::row_write::{Cell, GatheredRow};

/// The rows' ids and their cells column by column (the rows of a kind all set the same
/// columns), or the rows as they were when a column's cells are not all of one type: those
/// are written as VALUES, which types each cell on its own.
pub(crate) fn transpose(
    rows: Vec<GatheredRow>,
) -> Result<(Vec<String>, Vec<Column>), Vec<GatheredRow>> {
    let types = |gathered: &GatheredRow| -> Vec<_> {
        gathered
            .row
            .values()
            .map(|cell| std::mem::discriminant(&Column::empty_for(cell)))
            .collect()
    };
    let Some(first) = rows.first() else {
        return Err(rows);
    };
    let first_types = types(first);
    let mut columns: Vec<Column> = first.row.values().map(Column::empty_for).collect();
    if rows.iter().any(|gathered| types(gathered) != first_types) {
        return Err(rows);
    }
    let mut ids = Vec::with_capacity(rows.len());
    for gathered in rows {
        ids.push(gathered.id);
        for (column, cell) in columns.iter_mut().zip(gathered.row.into_values()) {
            column.push(cell);
        }
    }
    Ok((ids, columns))
}

/// One column's values, row by row.
pub(crate) enum Column {
    Text(Vec<Option<String>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Int(Vec<i64>),
    OptionalInt(Vec<Option<i64>>),
    Bool(Vec<bool>),
    Json(Vec<Value>),
}

impl Column {
    /// An empty column of `cell`'s type.
    fn empty_for(cell: &Cell) -> Column {
        match cell {
            Cell::Text(_) => Column::Text(Vec::new()),
            Cell::Time(_) => Column::Time(Vec::new()),
            Cell::Int(_) | Cell::AddInt(_) => Column::Int(Vec::new()),
            Cell::OptionalInt(_) => Column::OptionalInt(Vec::new()),
            Cell::Bool(_) => Column::Bool(Vec::new()),
            Cell::Json(_) | Cell::AppendJson(_) => Column::Json(Vec::new()),
        }
    }

    /// Adds `cell`, of this column's type (`transpose` checked every row's).
    fn push(&mut self, cell: Cell) {
        match (self, cell) {
            (Column::Text(values), Cell::Text(value)) => values.push(value),
            (Column::Time(values), Cell::Time(value)) => values.push(value),
            (Column::Int(values), Cell::Int(value) | Cell::AddInt(value)) => values.push(value),
            (Column::OptionalInt(values), Cell::OptionalInt(value)) => values.push(value),
            (Column::Bool(values), Cell::Bool(value)) => values.push(value),
            (Column::Json(values), Cell::Json(value) | Cell::AppendJson(value)) => {
                values.push(value)
            }
            _ => unreachable!("transpose checks that a column's cells are of one type"),
        }
    }

    /// Binds the column as one array parameter, typed.
    fn bind(self, query: &mut QueryBuilder<'static, Postgres>) {
        match self {
            Column::Text(values) => query.push_bind(values).push("::text[]"),
            Column::Time(values) => query.push_bind(values).push("::timestamptz[]"),
            Column::Int(values) => query.push_bind(values).push("::int8[]"),
            Column::OptionalInt(values) => query.push_bind(values).push("::int8[]"),
            Column::Bool(values) => query.push_bind(values).push("::bool[]"),
            Column::Json(values) => query.push_bind(values).push("::jsonb[]"),
        };
    }
}

/// `unnest(…) AS v (names…)`: the columns side by side, one row per index.
pub(crate) fn push_unnest(
    query: &mut QueryBuilder<'static, Postgres>,
    columns: Vec<Column>,
    names: &[&str],
) {
    query.push("unnest(");
    for (i, column) in columns.into_iter().enumerate() {
        if i > 0 {
            query.push(", ");
        }
        column.bind(query);
    }
    query.push(format!(") AS v ({})", names.join(", ")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_store::row_write::Row;

    fn gathered(id: &str, cells: Vec<(&'static str, Cell)>) -> GatheredRow {
        GatheredRow {
            id: id.to_owned(),
            row: cells.into_iter().collect::<Row>(),
        }
    }

    #[test]
    fn rows_of_one_type_per_column_become_arrays_in_row_order() {
        let rows = vec![
            gathered("a", vec![("n", Cell::Int(1)), ("s", Cell::text("x"))]),
            gathered("b", vec![("n", Cell::AddInt(2)), ("s", Cell::Text(None))]),
        ];
        let Ok((ids, columns)) = transpose(rows) else {
            panic!("one type per column");
        };
        assert_eq!(ids, ["a", "b"]);
        assert!(matches!(&columns[0], Column::Int(values) if values == &[1, 2]));
        assert!(
            matches!(&columns[1], Column::Text(values) if values == &[Some("x".to_owned()), None])
        );
    }

    #[test]
    fn a_column_of_mixed_types_leaves_the_rows_as_they_were() {
        let rows = vec![
            gathered("a", vec![("n", Cell::Int(1))]),
            gathered("b", vec![("n", Cell::OptionalInt(None))]),
        ];
        let Err(rows) = transpose(rows) else {
            panic!("mixed types are not one array");
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].id, "b");
    }
}
