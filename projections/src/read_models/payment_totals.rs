//! `payment_totals`, the payment-aggregate read model: per customer and currency, the sum of
//! succeeded charges less refunds and how many charges succeeded. It feeds the customer list's
//! `includePaymentData` and the portal. Projected inline: each settlement adds to its row in
//! the append statement, so a list read after a payment shows it.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::payment::{Payment, PaymentEvent, PaymentKind};
use domain::tenant::Tenant;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};

pub const TABLE: &str = "payment_totals";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentTotalsView {
    pub customer_id: String,
    pub currency: String,
    pub total_payments_cents: i64,
    pub payment_count: i64,
    pub last_payment_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentTotalsProjection;

impl PaymentTotalsProjection {
    /// The totals of the tenant's customers `ids`, a row per customer and currency, the most
    /// recently paid currency of each customer first.
    pub async fn for_customers(
        pool: &PgPool,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<PaymentTotalsView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT customer_id, currency, total_payments_cents, payment_count, last_payment_at \
             FROM {TABLE} WHERE tenant = $1 AND customer_id = ANY($2) \
             ORDER BY customer_id, last_payment_at DESC, currency"
        ))
        .bind(tenant.key())
        .bind(ids)
        .fetch_all(pool)
        .await
    }
}

/// What a settled payment adds: known from its own `PaymentInitiated` when the append holds
/// it (a rebuild replays a payment's whole history at once), else read from `payment_list`,
/// where its earlier append put it.
struct Initiated {
    tenant: String,
    customer_id: String,
    currency: String,
    amount_cents: i64,
    is_charge: bool,
}

fn upsert_tail(query: &mut QueryBuilder<'static, Postgres>) {
    query.push(format!(
        " ON CONFLICT (customer_id, currency) DO UPDATE SET \
         total_payments_cents = {TABLE}.total_payments_cents + EXCLUDED.total_payments_cents, \
         payment_count = {TABLE}.payment_count + EXCLUDED.payment_count, \
         last_payment_at = greatest({TABLE}.last_payment_at, EXCLUDED.last_payment_at)"
    ));
}

impl InlineProjection for PaymentTotalsProjection {
    fn name(&self) -> &'static str {
        TABLE
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut initiated: Option<Initiated> = None;
        for event in events {
            let Some(decoded) = decode::<Payment>(event)? else {
                continue;
            };
            match decoded {
                PaymentEvent::PaymentInitiated {
                    tenant,
                    customer_id,
                    kind,
                    amount_cents,
                    currency,
                    ..
                } => {
                    initiated = Some(Initiated {
                        tenant: tenant.key(),
                        customer_id: customer_id.to_string(),
                        currency: currency.as_str().to_owned(),
                        amount_cents,
                        is_charge: kind == PaymentKind::Charge,
                    });
                }
                PaymentEvent::PaymentSucceeded { at, .. } => {
                    let payment_id = event.aggregate_id.clone();
                    let known = initiated.take();
                    append.write(move |query| {
                        query.push(format!(
                            "INSERT INTO {TABLE} (tenant, customer_id, currency, \
                             total_payments_cents, payment_count, last_payment_at) "
                        ));
                        match known {
                            Some(payment) => {
                                query
                                    .push("VALUES (")
                                    .push_bind(payment.tenant)
                                    .push(", ")
                                    .push_bind(payment.customer_id)
                                    .push(", ")
                                    .push_bind(payment.currency)
                                    .push(", ")
                                    .push_bind(payment.amount_cents)
                                    .push(", ")
                                    .push_bind(i64::from(payment.is_charge))
                                    .push(", ")
                                    .push_bind(at)
                                    .push(")");
                            }
                            None => {
                                query
                                    .push(
                                        "SELECT tenant, customer_id, currency, amount_cents, \
                                         CASE WHEN kind = 'charge' THEN 1 ELSE 0 END, ",
                                    )
                                    .push_bind(at)
                                    .push(" FROM payment_list WHERE id = ")
                                    .push_bind(payment_id);
                            }
                        }
                        upsert_tail(query);
                    });
                }
                PaymentEvent::PaymentFailed { .. } => {}
            }
        }
        Ok(())
    }
}
