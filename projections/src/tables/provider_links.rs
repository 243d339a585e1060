//! What billstream remembers of its objects at a provider: a customer's customer object there
//! (Stripe's `cus_…`, made once), and the provider's subscription behind a billstream
//! subscription (Dodo's `sub_…`).

use std::collections::HashMap;

use domain::tenant::Tenant;
use sqlx::PgPool;

/// The provider's id for the customer, if one was made.
pub async fn provider_customer(
    pool: &PgPool,
    tenant: &Tenant,
    customer_id: &str,
    provider: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT provider_customer_id FROM provider_customers \
         WHERE tenant = $1 AND customer_id = $2 AND provider = $3",
    )
    .bind(tenant.key())
    .bind(customer_id)
    .bind(provider)
    .fetch_optional(pool)
    .await
}

/// [`provider_customer`] for each of `customer_ids`, in one query: customer id to the
/// provider's id, for those the provider knows.
pub async fn provider_customers(
    pool: &PgPool,
    tenant: &Tenant,
    customer_ids: &[String],
    provider: &str,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT customer_id, provider_customer_id FROM provider_customers \
         WHERE tenant = $1 AND customer_id = ANY($2) AND provider = $3",
    )
    .bind(tenant.key())
    .bind(customer_ids)
    .bind(provider)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Remembers the provider's id for the customer and returns the one remembered: the first, when
/// two requests made one each, unless `replace` (the first is gone at the provider).
pub async fn remember_provider_customer(
    pool: &PgPool,
    tenant: &Tenant,
    customer_id: &str,
    provider: &str,
    provider_customer_id: &str,
    replace: bool,
) -> Result<String, sqlx::Error> {
    let on_conflict = if replace {
        "DO UPDATE SET provider_customer_id = EXCLUDED.provider_customer_id"
    } else {
        // A no-op update, so RETURNING yields the row that won.
        "DO UPDATE SET provider_customer_id = provider_customers.provider_customer_id"
    };
    sqlx::query_scalar(&format!(
        "INSERT INTO provider_customers (tenant, customer_id, provider, provider_customer_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tenant, customer_id, provider) {on_conflict} \
         RETURNING provider_customer_id"
    ))
    .bind(tenant.key())
    .bind(customer_id)
    .bind(provider)
    .bind(provider_customer_id)
    .fetch_one(pool)
    .await
}

/// The provider's subscription behind billstream subscription `subscription_id`.
pub async fn provider_subscription(
    pool: &PgPool,
    tenant: &Tenant,
    subscription_id: &str,
    provider: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT provider_subscription_id FROM provider_subscriptions \
         WHERE tenant = $1 AND subscription_id = $2 AND provider = $3",
    )
    .bind(tenant.key())
    .bind(subscription_id)
    .bind(provider)
    .fetch_optional(pool)
    .await
}

/// The billstream subscription the provider's subscription stands behind.
pub async fn subscription_of_provider_subscription(
    pool: &PgPool,
    tenant: &Tenant,
    provider: &str,
    provider_subscription_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT subscription_id FROM provider_subscriptions \
         WHERE tenant = $1 AND provider = $2 AND provider_subscription_id = $3",
    )
    .bind(tenant.key())
    .bind(provider)
    .bind(provider_subscription_id)
    .fetch_optional(pool)
    .await
}

/// Links billstream subscription `subscription_id` to the provider's subscription. The first
/// link of either side stands: a second provider subscription naming the same billstream one
/// (or the reverse) is a mistake in the merchant's checkout and must not steal the first.
/// Returns whether the link was made now.
pub async fn link_provider_subscription(
    pool: &PgPool,
    tenant: &Tenant,
    subscription_id: &str,
    provider: &str,
    provider_subscription_id: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO provider_subscriptions \
         (tenant, subscription_id, provider, provider_subscription_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(tenant.key())
    .bind(subscription_id)
    .bind(provider)
    .bind(provider_subscription_id)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
