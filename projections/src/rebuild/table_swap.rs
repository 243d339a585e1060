//! The fresh-table half of a rebuild: give the fresh table the live one's indexes, then take
//! the live one's place; and the log's rows as events to fold.

use cqrs_es::persist::SerializedEvent;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

/// Gives `fresh` the indexes of `live`, named `<name>_rebuild` until the swap.
pub(crate) async fn copy_indexes(
    connection: &mut PgConnection,
    live: &str,
    fresh: &str,
) -> Result<(), sqlx::Error> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(live)
    .fetch_all(&mut *connection)
    .await?;
    for (name, definition) in indexes {
        let definition = definition
            .replacen(
                &format!("INDEX {name} ON"),
                &format!("INDEX {name}_rebuild ON"),
                1,
            )
            .replacen(&format!(".{live} "), &format!(".{fresh} "), 1);
        sqlx::query(&definition).execute(&mut *connection).await?;
    }
    Ok(())
}

/// Drops `live` and gives `fresh` its name and its index and key names.
pub(crate) async fn swap(
    connection: &mut PgConnection,
    live: &str,
    fresh: &str,
) -> Result<(), sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes \
         WHERE schemaname = current_schema() AND tablename = $1",
    )
    .bind(live)
    .fetch_all(&mut *connection)
    .await?;
    sqlx::query(&format!("DROP TABLE {live}"))
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!("ALTER TABLE {fresh} RENAME TO {live}"))
        .execute(&mut *connection)
        .await?;
    for name in names {
        sqlx::query(&format!("ALTER INDEX {name}_rebuild RENAME TO {name}"))
            .execute(&mut *connection)
            .await?;
    }
    // The primary key was copied as a unique index; make it the key again.
    sqlx::query(&format!(
        "ALTER TABLE {live} ADD CONSTRAINT {live}_pkey PRIMARY KEY USING INDEX {live}_pkey"
    ))
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// A row of `events` as an event of its current version.
pub(crate) fn serialized(row: &PgRow) -> Result<SerializedEvent, sqlx::Error> {
    Ok(domain::upcast::upcast(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get::<i64, _>("sequence")? as usize,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    }))
}
