//! The `payment_list` read model: every charge and refund with its status and the provider's
//! answer, projected inline. Pending payments are what the scheduler settles after a crash.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::payment::{Payment, PaymentEvent, PaymentStatus};
use domain::tenant::Tenant;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

pub const TABLE: &str = "payment_list";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentView {
    pub id: String,
    pub customer_id: String,
    pub invoice_id: Option<String>,
    pub payment_method_id: Option<String>,
    pub provider: String,
    pub kind: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
    pub provider_reference: Option<String>,
    pub refunded_payment_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, customer_id, invoice_id, payment_method_id, provider, kind, \
    amount_cents, currency, status, error_message, error_code, provider_reference, \
    refunded_payment_id, created_at, settled_at";

/// Which payments a list asks for.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub customer_id: Option<String>,
    pub invoice_id: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentListProjection;

impl PaymentListProjection {
    /// The tenant's payment `id`; another tenant's is not found.
    pub async fn get(
        pool: &PgPool,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<PaymentView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE id = $1 AND tenant = $2"
        ))
        .bind(id)
        .bind(tenant.key())
        .fetch_optional(pool)
        .await
    }

    /// The tenant's payments that match `filter`, newest first: those before payment
    /// `starting_after`, at most `limit`, and whether more follow.
    pub async fn list(
        pool: &PgPool,
        tenant: &Tenant,
        filter: &PaymentFilter,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<PaymentView>, bool), sqlx::Error> {
        // Newest first by when they were made (ids derived from a charge attempt do not sort
        // by it); the cursor is a keyset one on (created_at, id).
        let mut payments: Vec<PaymentView> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} \
             WHERE tenant = $1 AND ($2::text IS NULL OR (created_at, id) < \
                 (SELECT created_at, id FROM {TABLE} WHERE id = $2 AND tenant = $1)) \
               AND ($3::text IS NULL OR customer_id = $3) \
               AND ($4::text IS NULL OR invoice_id = $4) \
               AND ($5::text IS NULL OR status = $5) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
        ))
        .bind(tenant.key())
        .bind(starting_after)
        .bind(filter.customer_id.as_deref())
        .bind(filter.invoice_id.as_deref())
        .bind(filter.status.as_deref())
        .bind(limit + 1)
        .fetch_all(pool)
        .await?;
        let has_more = payments.len() as i64 > limit;
        payments.truncate(limit as usize);
        Ok((payments, has_more))
    }

    /// The tenant's payments of invoices `invoice_ids`, newest first: a page of invoices'
    /// payments in one query.
    pub async fn for_invoices(
        pool: &PgPool,
        tenant: &Tenant,
        invoice_ids: &[String],
    ) -> Result<Vec<PaymentView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND invoice_id = ANY($2) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(tenant.key())
        .bind(invoice_ids)
        .fetch_all(pool)
        .await
    }

    /// Payments of every tenant still pending since before `before`, oldest first: those a
    /// crash left between asking the provider and recording its answer.
    pub async fn pending_before(
        pool: &PgPool,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, PaymentView)>, sqlx::Error> {
        let rows: Vec<PendingRow> = sqlx::query_as(&format!(
            "SELECT tenant, {COLUMNS} FROM {TABLE} \
             WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.tenant, row.payment))
            .collect())
    }
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    tenant: String,
    #[sqlx(flatten)]
    payment: PaymentView,
}

impl InlineProjection for PaymentListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "payment_list_pkey"
    }

    fn name(&self) -> &'static str {
        TABLE
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        (constraint == "payment_list_one_live_charge").then_some(ClaimConflict {
            kind: ClaimKind::InvoiceCharge,
        })
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut row = RowWrite::default();
        for event in events {
            let Some(decoded) = decode::<Payment>(event)? else {
                continue;
            };
            match decoded {
                PaymentEvent::PaymentInitiated {
                    id,
                    tenant,
                    customer_id,
                    invoice_id,
                    payment_method_id,
                    provider,
                    kind,
                    amount_cents,
                    currency,
                    refunded_payment_id,
                    top_up: _,
                    at,
                } => {
                    row.created = true;
                    row.set("id", Cell::text(id.as_str()));
                    row.set("tenant", Cell::text(tenant.key()));
                    row.set("customer_id", Cell::text(customer_id.as_str()));
                    row.set(
                        "invoice_id",
                        Cell::Text(invoice_id.map(|id| id.to_string())),
                    );
                    row.set(
                        "payment_method_id",
                        Cell::Text(payment_method_id.map(|id| id.to_string())),
                    );
                    row.set("provider", Cell::text(provider.as_str()));
                    row.set("kind", Cell::text(kind.as_str()));
                    row.set("amount_cents", Cell::Int(amount_cents));
                    row.set("currency", Cell::text(currency.as_str()));
                    row.set("status", Cell::text(PaymentStatus::Pending.as_str()));
                    row.set(
                        "refunded_payment_id",
                        Cell::Text(refunded_payment_id.map(|id| id.to_string())),
                    );
                    row.set("created_at", Cell::Time(Some(at)));
                }
                PaymentEvent::PaymentSucceeded {
                    provider_reference,
                    at,
                } => {
                    row.set("status", Cell::text(PaymentStatus::Succeeded.as_str()));
                    row.set("provider_reference", Cell::Text(provider_reference));
                    row.set("settled_at", Cell::Time(Some(at)));
                }
                PaymentEvent::PaymentFailed {
                    error_message,
                    error_code,
                    at,
                } => {
                    row.set("status", Cell::text(PaymentStatus::Failed.as_str()));
                    row.set("error_message", Cell::text(error_message));
                    row.set("error_code", Cell::Text(error_code));
                    row.set("settled_at", Cell::Time(Some(at)));
                }
            }
        }
        if let Some(first) = events.first() {
            row.push(append, TABLE, first.aggregate_id.clone());
        }
        Ok(())
    }
}
