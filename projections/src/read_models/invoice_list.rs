//! The `invoice_list` read model: every invoice and adjustment document with its status,
//! lines, totals and what corrected it, projected inline. Its partial unique index invoices
//! each (subscription, period) once, whatever runs twice or races.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::invoice::{DocumentType, Invoice, InvoiceAdjustment, InvoiceEvent, InvoiceStatus};
use domain::tenant::Tenant;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

pub const TABLE: &str = "invoice_list";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InvoiceView {
    pub id: String,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    pub number: Option<String>,
    pub status: String,
    pub document_type: String,
    pub currency: String,
    pub lines: Value,
    pub subtotal_cents: i64,
    pub total_amount_cents: i64,
    pub amount_paid_cents: i64,
    pub credited_cents: i64,
    pub issue_date: Option<DateTime<Utc>>,
    pub due_date: Option<DateTime<Utc>>,
    pub paid_date: Option<DateTime<Utc>>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub original_invoice_id: Option<String>,
    pub adjustments: Value,
    pub payment_ids: Value,
    pub pdf_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl InvoiceView {
    /// What is still owed: the total less what was paid and what corrected it, never below 0;
    /// nothing on a void or uncollectible invoice, nor on an adjustment document.
    pub fn amount_due_cents(&self) -> i64 {
        if self.status != InvoiceStatus::Issued.as_str()
            || self.document_type != DocumentType::Standard.as_str()
        {
            return 0;
        }
        (self.total_amount_cents - self.amount_paid_cents - self.credited_cents).max(0)
    }
}

const COLUMNS: &str = "id, customer_id, subscription_id, number, status, document_type, \
    currency, lines, subtotal_cents, total_amount_cents, amount_paid_cents, credited_cents, \
    issue_date, due_date, paid_date, period_start, period_end, original_invoice_id, \
    adjustments, payment_ids, pdf_sha256, created_at";

/// Which invoices a list asks for.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub status: Option<String>,
    pub document_type: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct InvoiceListProjection;

impl InvoiceListProjection {
    /// The tenant's invoice `id`; another tenant's is not found.
    pub async fn get(
        pool: &PgPool,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<InvoiceView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE id = $1 AND tenant = $2"
        ))
        .bind(id)
        .bind(tenant.key())
        .fetch_optional(pool)
        .await
    }

    /// The tenant's invoices that match `filter`, newest first: those before invoice
    /// `starting_after`, at most `limit`, and whether more follow.
    pub async fn list(
        pool: &PgPool,
        tenant: &Tenant,
        filter: &InvoiceFilter,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<InvoiceView>, bool), sqlx::Error> {
        // Newest first by when they were made (ids derived from a period do not sort by it);
        // the cursor is a keyset one on (created_at, id).
        let mut invoices: Vec<InvoiceView> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} \
             WHERE tenant = $1 AND ($2::text IS NULL OR (created_at, id) < \
                 (SELECT created_at, id FROM {TABLE} WHERE id = $2 AND tenant = $1)) \
               AND ($3::text IS NULL OR customer_id = $3) \
               AND ($4::text IS NULL OR subscription_id = $4) \
               AND ($5::text IS NULL OR status = $5) \
               AND ($6::text IS NULL OR document_type = $6) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        ))
        .bind(tenant.key())
        .bind(starting_after)
        .bind(filter.customer_id.as_deref())
        .bind(filter.subscription_id.as_deref())
        .bind(filter.status.as_deref())
        .bind(filter.document_type.as_deref())
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
        let has_more = invoices.len() as i64 > limit;
        invoices.truncate(limit as usize);
        Ok((invoices, has_more))
    }

    /// The ids of `subscription_id`'s issued, unpaid standard invoices.
    pub async fn open_of_subscription(
        pool: &PgPool,
        subscription_id: &str,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(&format!(
            "SELECT id FROM {TABLE} WHERE subscription_id = $1 AND status = 'issued' \
             AND document_type = 'standard' ORDER BY id"
        ))
        .bind(subscription_id)
        .fetch_all(pool)
        .await
    }

    /// The start of the period `subscription_id` was invoiced for before `before`: the period
    /// whose usage a renewal bills in arrears.
    pub async fn previous_period_start(
        pool: &PgPool,
        subscription_id: &str,
        before: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        sqlx::query_scalar(&format!(
            "SELECT max(period_start) FROM {TABLE} WHERE subscription_id = $1 \
             AND document_type = 'standard' AND period_start < $2"
        ))
        .bind(subscription_id)
        .bind(before)
        .fetch_one(pool)
        .await
    }

    /// The standard invoice of `subscription_id` for the period starting at `period_start`.
    pub async fn for_period(
        pool: &PgPool,
        subscription_id: &str,
        period_start: DateTime<Utc>,
    ) -> Result<Option<InvoiceView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} \
             WHERE subscription_id = $1 AND period_start = $2 AND document_type = 'standard'"
        ))
        .bind(subscription_id)
        .bind(period_start)
        .fetch_optional(pool)
        .await
    }
}

impl InlineProjection for InvoiceListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "invoice_list_pkey"
    }

    fn name(&self) -> &'static str {
        TABLE
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut row = RowWrite::default();
        let mut paid = 0i64;
        let mut credited = 0i64;
        let mut adjustments = Vec::new();
        let mut payments = Vec::new();
        for event in events {
            let Some(decoded) = decode::<Invoice>(event)? else {
                continue;
            };
            let at = decoded.at();
            match decoded {
                InvoiceEvent::InvoiceDrafted {
                    id,
                    tenant,
                    customer_id,
                    subscription_id,
                    currency,
                    document_type,
                    lines,
                    subtotal_cents,
                    total_amount_cents,
                    period_start,
                    period_end,
                    original_invoice_id,
                    at,
                } => {
                    row.created = true;
                    row.set("id", Cell::text(id.as_str()));
                    row.set("tenant", Cell::text(tenant.key()));
                    row.set("customer_id", Cell::text(customer_id.as_str()));
                    row.set(
                        "subscription_id",
                        Cell::Text(subscription_id.map(|id| id.to_string())),
                    );
                    row.set("number", Cell::Text(None));
                    row.set("status", Cell::text(InvoiceStatus::Draft.as_str()));
                    row.set("document_type", Cell::text(document_type.as_str()));
                    row.set("currency", Cell::text(currency.as_str()));
                    row.set("lines", Cell::Json(json!(lines)));
                    row.set("subtotal_cents", Cell::Int(subtotal_cents));
                    row.set("total_amount_cents", Cell::Int(total_amount_cents));
                    row.set("period_start", Cell::Time(period_start));
                    row.set("period_end", Cell::Time(period_end));
                    row.set(
                        "original_invoice_id",
                        Cell::Text(original_invoice_id.map(|id| id.to_string())),
                    );
                    row.set("created_at", Cell::Time(Some(at)));
                }
                InvoiceEvent::InvoiceIssued {
                    number,
                    issue_date,
                    due_date,
                    pdf_sha256,
                    ..
                } => {
                    row.set("number", Cell::text(number));
                    row.set("status", Cell::text(InvoiceStatus::Issued.as_str()));
                    row.set("issue_date", Cell::Time(Some(issue_date)));
                    row.set("due_date", Cell::Time(Some(due_date)));
                    row.set("pdf_sha256", Cell::Text(pdf_sha256));
                }
                InvoiceEvent::InvoicePaymentRecorded {
                    payment_id,
                    amount_cents,
                    ..
                } => {
                    paid += amount_cents;
                    payments.push(json!(payment_id));
                }
                InvoiceEvent::InvoicePaid {
                    paid_date,
                    pdf_sha256,
                    ..
                } => {
                    row.set("status", Cell::text(InvoiceStatus::Paid.as_str()));
                    row.set("paid_date", Cell::Time(Some(paid_date)));
                    // The document now shows "Paid": its PDF is the paid one.
                    if pdf_sha256.is_some() {
                        row.set("pdf_sha256", Cell::Text(pdf_sha256));
                    }
                }
                InvoiceEvent::InvoiceVoided {
                    cancellation_id,
                    amount_cents,
                    ..
                } => {
                    row.set("status", Cell::text(InvoiceStatus::Void.as_str()));
                    if let Some(invoice_id) = cancellation_id {
                        credited += amount_cents;
                        adjustments.push(json!(InvoiceAdjustment {
                            invoice_id,
                            document_type: DocumentType::Cancellation,
                            amount_cents,
                        }));
                    }
                }
                InvoiceEvent::InvoiceCredited {
                    credit_note_id,
                    amount_cents,
                    ..
                } => {
                    credited += amount_cents;
                    adjustments.push(json!(InvoiceAdjustment {
                        invoice_id: credit_note_id,
                        document_type: DocumentType::CreditNote,
                        amount_cents,
                    }));
                }
                InvoiceEvent::InvoiceMarkedUncollectible { .. } => {
                    row.set("status", Cell::text(InvoiceStatus::Uncollectible.as_str()));
                }
            }
            row.set("updated_at", Cell::Time(Some(at)));
        }
        if paid != 0 || row.created {
            row.set("amount_paid_cents", Cell::AddInt(paid));
        }
        if credited != 0 || row.created {
            row.set("credited_cents", Cell::AddInt(credited));
        }
        if !adjustments.is_empty() || row.created {
            row.set("adjustments", Cell::AppendJson(Value::Array(adjustments)));
        }
        if !payments.is_empty() || row.created {
            row.set("payment_ids", Cell::AppendJson(Value::Array(payments)));
        }
        if let Some(first) = events.first() {
            row.push(append, TABLE, first.aggregate_id.clone());
        }
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        (constraint == "invoice_list_one_per_period").then_some(ClaimConflict {
            kind: ClaimKind::PeriodInvoiced,
        })
    }
}
