//! Merchants, their secret keys and their payment provider's settings (migrations 0003 and
//! 0012). Operator configuration, made by the CLI: plain rows, not events.

use domain::provider::Provider;
use domain::tenant::Mode;
use sqlx::PgPool;

/// A merchant to store, with its provider's settings resolved (base URLs filled in).
pub struct NewMerchantRow<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub provider: Provider,
    pub stripe: Option<&'a StripeAccountRow>,
    pub dodo: Option<&'a DodoAccountRow>,
    /// The merchant's keys: id, mode and the SHA-256 of the secret.
    pub keys: &'a [(String, Mode, Vec<u8>)],
}

/// A merchant's provider and the credentials of its account there, as stored.
#[derive(Debug, Clone)]
pub struct MerchantProviderRow {
    pub merchant_id: String,
    pub provider: Provider,
    pub stripe: Option<StripeAccountRow>,
    pub dodo: Option<DodoAccountRow>,
}

#[derive(Clone)]
pub struct StripeAccountRow {
    pub secret_key: String,
    pub publishable_key: Option<String>,
    pub webhook_secret: Option<String>,
    pub base_url: String,
}

#[derive(Clone)]
pub struct DodoAccountRow {
    pub api_key: String,
    pub webhook_secret: Option<String>,
    pub base_url: String,
    /// The billstream mode the Dodo account serves.
    pub mode: Mode,
}

// The credentials must never reach a log line.
impl std::fmt::Debug for StripeAccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeAccountRow")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DodoAccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DodoAccountRow")
            .field("base_url", &self.base_url)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Stores the merchant and its keys in one transaction. Secrets are stored as given: production
/// would encrypt them at rest.
pub async fn insert(
    pool: &PgPool,
    merchant: &NewMerchantRow<'_>,
    stripe_default_base_url: &str,
    dodo_default_base_url: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let stripe = merchant.stripe;
    let dodo = merchant.dodo;
    sqlx::query(
        "INSERT INTO merchants (id, name, provider, stripe_secret_key, stripe_publishable_key, \
         stripe_webhook_secret, stripe_base_url, dodo_api_key, dodo_webhook_secret, \
         dodo_base_url, dodo_mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(merchant.id)
    .bind(merchant.name)
    .bind(merchant.provider.as_str())
    .bind(stripe.map(|s| s.secret_key.as_str()))
    .bind(stripe.and_then(|s| s.publishable_key.as_deref()))
    .bind(stripe.and_then(|s| s.webhook_secret.as_deref()))
    .bind(stripe.map_or(stripe_default_base_url, |s| s.base_url.as_str()))
    .bind(dodo.map(|d| d.api_key.as_str()))
    .bind(dodo.and_then(|d| d.webhook_secret.as_deref()))
    .bind(dodo.map_or(dodo_default_base_url, |d| d.base_url.as_str()))
    .bind(dodo.map_or(Mode::Live, |d| d.mode).as_str())
    .execute(&mut *tx)
    .await?;
    for (key_id, mode, secret_hash) in merchant.keys {
        sqlx::query(
            "INSERT INTO api_keys (id, merchant_id, mode, secret_hash) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_id)
        .bind(merchant.id)
        .bind(mode.as_str())
        .bind(secret_hash)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

type ProviderRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// The merchant's provider settings; `None` for a merchant that does not exist.
pub async fn provider_settings(
    pool: &PgPool,
    merchant_id: &str,
) -> Result<Option<MerchantProviderRow>, sqlx::Error> {
    let row: Option<ProviderRow> = sqlx::query_as(
        "SELECT provider, stripe_secret_key, stripe_publishable_key, stripe_webhook_secret, \
         stripe_base_url, dodo_api_key, dodo_webhook_secret, dodo_base_url, dodo_mode \
         FROM merchants WHERE id = $1",
    )
    .bind(merchant_id)
    .fetch_optional(pool)
    .await?;
    let Some((
        provider,
        stripe_secret_key,
        stripe_publishable_key,
        stripe_webhook_secret,
        stripe_base_url,
        dodo_api_key,
        dodo_webhook_secret,
        dodo_base_url,
        dodo_mode,
    )) = row
    else {
        return Ok(None);
    };
    Ok(Some(MerchantProviderRow {
        merchant_id: merchant_id.to_owned(),
        // The column's CHECK allows only the three names.
        provider: Provider::parse(&provider).unwrap_or_default(),
        stripe: stripe_secret_key.map(|secret_key| StripeAccountRow {
            secret_key,
            publishable_key: stripe_publishable_key,
            webhook_secret: stripe_webhook_secret,
            base_url: stripe_base_url,
        }),
        dodo: dodo_api_key.map(|api_key| DodoAccountRow {
            api_key,
            webhook_secret: dodo_webhook_secret,
            base_url: dodo_base_url,
            mode: Mode::parse(&dodo_mode).unwrap_or(Mode::Live),
        }),
    }))
}

/// The merchant's name, as its invoices show it; `None` for a merchant that does not exist.
pub async fn name(pool: &PgPool, merchant_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM merchants WHERE id = $1")
        .bind(merchant_id)
        .fetch_optional(pool)
        .await
}

/// How many days the merchant's past-due subscriptions have to pay; `None` for a merchant that
/// does not exist.
pub async fn grace_period_days(
    pool: &PgPool,
    merchant_id: &str,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT grace_period_days FROM merchants WHERE id = $1")
        .bind(merchant_id)
        .fetch_optional(pool)
        .await
}

/// Sets the merchant's grace period; `false` for a merchant that does not exist.
pub async fn set_grace_period_days(
    pool: &PgPool,
    merchant_id: &str,
    days: i32,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query("UPDATE merchants SET grace_period_days = $2 WHERE id = $1")
        .bind(merchant_id)
        .bind(days)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(updated == 1)
}

/// The merchant's number prefixes: invoice, cancellation, credit note; `None` for a merchant
/// that does not exist.
pub async fn number_prefixes(
    pool: &PgPool,
    merchant_id: &str,
) -> Result<Option<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT invoice_prefix, cancellation_prefix, credit_note_prefix FROM merchants \
         WHERE id = $1",
    )
    .bind(merchant_id)
    .fetch_optional(pool)
    .await
}

/// Sets the merchant's number prefixes while none of its documents (in either mode) has a
/// number; `false` when it does not exist or has numbered one already.
pub async fn set_number_prefixes(
    pool: &PgPool,
    merchant_id: &str,
    (invoice, cancellation, credit_note): (&str, &str, &str),
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE merchants SET invoice_prefix = $2, cancellation_prefix = $3, \
             credit_note_prefix = $4 \
         WHERE id = $1 AND NOT EXISTS ( \
             SELECT 1 FROM document_numbers WHERE tenant IN ($1 || ':test', $1 || ':live'))",
    )
    .bind(merchant_id)
    .bind(invoice)
    .bind(cancellation)
    .bind(credit_note)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated == 1)
}
