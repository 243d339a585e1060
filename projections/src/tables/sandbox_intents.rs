//! The sandbox's setup intents: made when a customer starts adding a card, confirmed once with
//! the card. The payment method id is chosen when the intent is made, so however often it is
//! confirmed it adds one method at most.

use domain::tenant::Tenant;
use sqlx::PgPool;

/// An intent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxIntent {
    pub tenant: String,
    pub customer_id: String,
    pub confirmed: bool,
    pub payment_method_id: String,
}

pub async fn create(
    pool: &PgPool,
    intent_id: &str,
    tenant: &Tenant,
    customer_id: &str,
    payment_method_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sandbox_setup_intents (id, tenant, customer_id, status, payment_method_id) \
         VALUES ($1, $2, $3, 'requires_payment_method', $4)",
    )
    .bind(intent_id)
    .bind(tenant.key())
    .bind(customer_id)
    .bind(payment_method_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn find(pool: &PgPool, intent_id: &str) -> Result<Option<SandboxIntent>, sqlx::Error> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT tenant, customer_id, status, payment_method_id FROM sandbox_setup_intents \
         WHERE id = $1",
    )
    .bind(intent_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(tenant, customer_id, status, payment_method_id)| SandboxIntent {
            tenant,
            customer_id,
            confirmed: status == "succeeded",
            payment_method_id,
        },
    ))
}

/// Marks the intent confirmed; of racing confirms exactly one gets `true`.
pub async fn claim(pool: &PgPool, intent_id: &str) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "UPDATE sandbox_setup_intents SET status = 'succeeded', confirmed_at = now() \
         WHERE id = $1 AND status = 'requires_payment_method'",
    )
    .bind(intent_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Gives a claimed intent back, so the customer can try again.
pub async fn give_back(pool: &PgPool, intent_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sandbox_setup_intents \
         SET status = 'requires_payment_method', confirmed_at = NULL WHERE id = $1",
    )
    .bind(intent_id)
    .execute(pool)
    .await?;
    Ok(())
}
