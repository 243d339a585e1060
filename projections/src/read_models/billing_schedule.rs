//! What falls due for a tenant, read from the billing read models (`subscription_list`,
//! `invoice_list`, `payment_list`): the period ends and grace ends due by a time, and the
//! open invoices whose charges failed (with how often and since when), from which the app's
//! scheduler works out the retries.

use chrono::{DateTime, Utc};
use domain::tenant::Tenant;
use sqlx::PgPool;

/// An open subscription invoice whose charges failed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedInvoice {
    pub invoice_id: String,
    pub subscription_id: String,
    pub failures: i64,
    pub first_failure: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Live subscriptions whose period ends by then, and when, earliest first.
    pub period_ends: Vec<(String, DateTime<Utc>)>,
    /// Past-due subscriptions whose grace ends by then, and when, earliest first.
    pub grace_ends: Vec<(String, DateTime<Utc>)>,
    /// Every open invoice of a past-due subscription with failed charges: when each is
    /// retried is the app's rule.
    pub failed_invoices: Vec<FailedInvoice>,
}

/// Whether subscription `id`'s period ending at `period_end` is still to be ended: a
/// scheduler that read it due may find it renewed meanwhile by another (`subscription_list`
/// is written with the append, so this sees every committed renewal).
pub async fn period_end_still_due(
    pool: &PgPool,
    tenant: &Tenant,
    id: &str,
    period_end: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM subscription_list \
         WHERE tenant = $1 AND id = $2 AND status <> 'canceled' AND current_period_end = $3)",
    )
    .bind(tenant.key())
    .bind(id)
    .bind(period_end)
    .fetch_one(pool)
    .await
}

/// What of the tenant's schedule falls due by `until`: at most `limit` period ends and
/// `limit` grace ends (the earliest), and the failed invoices.
pub async fn due_by(
    pool: &PgPool,
    tenant: &Tenant,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Schedule, sqlx::Error> {
    let tenant = tenant.key();
    let period_ends = sqlx::query_as(
        "SELECT id, current_period_end FROM subscription_list \
         WHERE tenant = $1 AND status <> 'canceled' AND current_period_end <= $2 \
         ORDER BY current_period_end LIMIT $3",
    )
    .bind(&tenant)
    .bind(until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let grace_ends = sqlx::query_as(
        "SELECT id, grace_period_ends_at FROM subscription_list \
         WHERE tenant = $1 AND status = 'past_due' AND grace_period_ends_at <= $2 \
         ORDER BY grace_period_ends_at LIMIT $3",
    )
    .bind(&tenant)
    .bind(until)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let failed_invoices = sqlx::query_as(
        "SELECT i.id AS invoice_id, s.id AS subscription_id, count(*) AS failures, \
                min(p.settled_at) AS first_failure \
         FROM invoice_list i \
         JOIN subscription_list s ON s.id = i.subscription_id AND s.status = 'past_due' \
         JOIN payment_list p ON p.invoice_id = i.id AND p.kind = 'charge' \
              AND p.status = 'failed' \
         WHERE i.tenant = $1 AND i.status = 'issued' AND i.document_type = 'standard' \
         GROUP BY i.id, s.id",
    )
    .bind(&tenant)
    .fetch_all(pool)
    .await?;
    Ok(Schedule {
        period_ends,
        grace_ends,
        failed_invoices,
    })
}

/// The tenant's charges still pending since before `before`: the provider did not answer
/// (yet), or the process died before its answer was recorded. At most `limit`, oldest first.
pub async fn pending_payments(
    pool: &PgPool,
    tenant: &Tenant,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM payment_list \
         WHERE status = 'pending' AND tenant = $1 AND created_at < $2 \
         ORDER BY created_at LIMIT $3",
    )
    .bind(tenant.key())
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every tenant with a subscription that is not canceled, a credit grant whose expiry is not
/// recorded yet, or a charge still pending (a top-up's, say, of a customer with no plan):
/// those the scheduler looks at.
pub async fn tenants(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT tenant FROM subscription_list WHERE status <> 'canceled' \
         UNION \
         SELECT tenant FROM credit_grants WHERE ended IS NULL AND expires_at IS NOT NULL \
         UNION \
         SELECT tenant FROM payment_list WHERE status = 'pending'",
    )
    .fetch_all(pool)
    .await
}

/// The tenant's credit ledgers with a grant expired by `until` whose expiry is not recorded:
/// `(customer id, feature slug, its earliest such expiry)`, earliest first, at most `limit`.
pub async fn credit_expiries(
    pool: &PgPool,
    tenant: &Tenant,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, String, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT customer_id, feature_slug, min(expires_at) AS expires_at FROM credit_grants \
         WHERE tenant = $1 AND ended IS NULL AND expires_at <= $2 \
         GROUP BY customer_id, feature_slug ORDER BY 3 LIMIT $3",
    )
    .bind(tenant.key())
    .bind(until)
    .bind(limit)
    .fetch_all(pool)
    .await
}
