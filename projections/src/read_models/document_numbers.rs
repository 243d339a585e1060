//! `document_numbers`: each issued document's number, per tenant and series (its prefix:
//! `INV`, `CAN`, `CN`), claimed by the event that issues it, in the same statement. The
//! table's key refuses a number twice and its foreign key a number before its predecessor, so
//! a series has no gap and no duplicate, whatever races or crashes. The app picks the next
//! number and, refused, tries the one after (`app::invoices`).

use cqrs_es::persist::SerializedEvent;
use domain::invoice::{Invoice, InvoiceEvent};
use domain::tenant::Tenant;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, tenant_of, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

pub const TABLE: &str = "document_numbers";

/// A number's series and place in it: `INV-0042` is the 42nd of series `INV`.
pub fn parse_number(number: &str) -> Option<(&str, i32)> {
    let (series, seq) = number.rsplit_once('-')?;
    let seq: i32 = seq.parse().ok().filter(|n| *n > 0)?;
    (!series.is_empty()).then_some((series, seq))
}

/// The number of the `seq`-th document of `series`.
pub fn format_number(series: &str, seq: i32) -> String {
    format!("{series}-{seq:04}")
}

/// One series of a tenant, as `GET /v1/invoices/numbering` proves it gapless.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SeriesView {
    pub series: String,
    pub first: i32,
    pub last: i32,
    pub count: i64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DocumentNumbersProjection;

impl DocumentNumbersProjection {
    /// The highest number of `series` of the tenant, 0 before the first.
    /// Written as a backward scan of the key, not `max(seq)`: without statistics (a table
    /// never analyzed) the planner read every number of the series for `max`.
    pub async fn last(pool: &PgPool, tenant: &Tenant, series: &str) -> Result<i32, sqlx::Error> {
        let last: Option<i32> = sqlx::query_scalar(&format!(
            "SELECT seq FROM {TABLE} WHERE tenant = $1 AND series = $2 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(tenant.key())
        .bind(series)
        .fetch_optional(pool)
        .await?;
        Ok(last.unwrap_or(0))
    }

    /// Every series of the tenant: its first and last number and how many it holds.
    pub async fn series(pool: &PgPool, tenant: &Tenant) -> Result<Vec<SeriesView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT series, min(seq) AS first, max(seq) AS last, count(*) AS count \
             FROM {TABLE} WHERE tenant = $1 GROUP BY series ORDER BY series"
        ))
        .bind(tenant.key())
        .fetch_all(pool)
        .await
    }
}

impl InlineProjection for DocumentNumbersProjection {
    fn name(&self) -> &'static str {
        TABLE
    }

    /// An invoice holds one number: two issues of one invoice racing (two schedulers, say)
    /// may collide here before they collide on the invoice's next sequence, and it is the same
    /// news, that the invoice changed meanwhile. (Reported as a database failure, it made the
    /// loser's flow fail instead of seeing the issue done.)
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "document_numbers_invoice_id_key"
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        for event in events {
            let Some(InvoiceEvent::InvoiceIssued {
                number, issue_date, ..
            }) = decode::<Invoice>(event)?
            else {
                continue;
            };
            let (Some((series, seq)), Some(tenant)) = (parse_number(&number), tenant_of(event))
            else {
                continue;
            };
            let mut row = RowWrite {
                created: true,
                ..RowWrite::default()
            };
            row.set("tenant", Cell::text(tenant));
            row.set("series", Cell::text(series));
            row.set("seq", Cell::Int(i64::from(seq)));
            row.set("number", Cell::text(number));
            row.set("invoice_id", Cell::text(event.aggregate_id.clone()));
            row.set("issued_at", Cell::Time(Some(issue_date)));
            row.push(append, TABLE, event.aggregate_id.clone());
        }
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        matches!(
            constraint,
            "document_numbers_unique" | "document_numbers_follow"
        )
        .then_some(ClaimConflict {
            kind: ClaimKind::DocumentNumber,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_back_as_their_series_and_place() {
        assert_eq!(parse_number("INV-0042"), Some(("INV", 42)));
        assert_eq!(parse_number("ACME-INV-12345"), Some(("ACME-INV", 12345)));
        assert_eq!(format_number("CN", 7), "CN-0007");
        assert_eq!(
            parse_number(&format_number("CAN", 10_000)),
            Some(("CAN", 10_000))
        );
        for bad in ["INV", "INV-", "-0001", "INV-0000", "INV-x1"] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
    }
}
