//! Merchants and their secret keys. A key is shown once, when it is made; only its SHA-256
//! is stored. A merchant also names its payment provider and that provider's credentials.

use domain::tenant::Mode;
use projections::tables;
use projections::tables::merchants::{DodoAccountRow, NewMerchantRow, StripeAccountRow};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use sqlx::PgPool;

use crate::auth::hash_secret;

/// The payment provider a merchant bills through: the domain's own.
pub use domain::provider::Provider;

/// A new merchant and its two secret keys, as `billstream merchants create` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMerchant {
    pub merchant_id: String,
    pub test_secret_key: String,
    pub live_secret_key: String,
}

fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Creates a merchant with one test and one live key, in one transaction. A Stripe or Dodo
/// merchant needs its credentials: see [`create_merchant_with_providers`].
pub async fn create_merchant(
    pool: &PgPool,
    name: &str,
    provider: Provider,
) -> Result<NewMerchant, sqlx::Error> {
    insert_merchant(pool, name, &ProviderSettings::new(provider)).await
}

/// Creates a merchant billing through `settings.provider` with its credentials, once they are
/// complete for that provider.
pub async fn create_merchant_with_providers(
    pool: &PgPool,
    name: &str,
    settings: &ProviderSettings,
) -> Result<NewMerchant, CreateMerchantError> {
    settings.validate().map_err(CreateMerchantError::Invalid)?;
    Ok(insert_merchant(pool, name, settings).await?)
}

#[derive(Debug, thiserror::Error)]
pub enum CreateMerchantError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A merchant's payment provider and that provider's settings. Only the chosen provider's
/// settings are stored: a sandbox merchant keeps no Stripe key lying around.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub provider: Provider,
    pub stripe: StripeSettings,
    pub dodo: DodoSettings,
}

/// The merchant's Stripe account. `base_url` `None` is Stripe's public API.
#[derive(Clone, Default)]
pub struct StripeSettings {
    pub secret_key: Option<String>,
    pub publishable_key: Option<String>,
    pub webhook_secret: Option<String>,
    pub base_url: Option<String>,
}

/// The merchant's Dodo Payments account. `mode` is the billstream mode (tenant) it serves;
/// `base_url` `None` is Dodo's public API for that mode.
#[derive(Clone)]
pub struct DodoSettings {
    pub api_key: Option<String>,
    pub webhook_secret: Option<String>,
    pub base_url: Option<String>,
    pub mode: Mode,
}

impl Default for DodoSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            webhook_secret: None,
            base_url: None,
            mode: Mode::Live,
        }
    }
}

// Credentials must never reach a log line, so neither Debug shows them.
impl std::fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSettings")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DodoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DodoSettings")
            .field("base_url", &self.base_url)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ProviderSettings {
    /// `provider` with no credentials: complete for the sandbox only.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider,
            stripe: StripeSettings::default(),
            dodo: DodoSettings::default(),
        }
    }

    /// Refuses settings a provider could not work with, naming the flag to fix.
    pub fn validate(&self) -> Result<(), String> {
        let required = |value: &Option<String>, flag: &str| match value {
            Some(v) if !v.trim().is_empty() => Ok(()),
            _ => Err(format!(
                "--provider {} needs {flag}",
                self.provider.as_str()
            )),
        };
        let base_url = |value: &Option<String>, flag: &str| match value {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                Err(format!("{flag} must be an http:// or https:// URL"))
            }
            _ => Ok(()),
        };
        match self.provider {
            Provider::Sandbox => Ok(()),
            Provider::Stripe => {
                required(&self.stripe.secret_key, "--stripe-secret-key")?;
                required(&self.stripe.publishable_key, "--stripe-publishable-key")?;
                required(&self.stripe.webhook_secret, "--stripe-webhook-secret")?;
                base_url(&self.stripe.base_url, "--stripe-base-url")
            }
            Provider::Dodo => {
                required(&self.dodo.api_key, "--dodo-api-key")?;
                required(&self.dodo.webhook_secret, "--dodo-webhook-secret")?;
                if let Some(secret) = &self.dodo.webhook_secret {
                    providers::StandardWebhookSecret::parse(secret).map_err(|_| {
                        "--dodo-webhook-secret must be the whsec_… secret Dodo shows".to_owned()
                    })?;
                }
                base_url(&self.dodo.base_url, "--dodo-base-url")
            }
        }
    }
}

impl StripeSettings {
    fn account(&self) -> Option<StripeAccountRow> {
        Some(StripeAccountRow {
            secret_key: self.secret_key.clone()?,
            publishable_key: self.publishable_key.clone(),
            webhook_secret: self.webhook_secret.clone(),
            base_url: self
                .base_url
                .clone()
                .unwrap_or_else(|| providers::stripe::DEFAULT_BASE_URL.to_owned()),
        })
    }
}

impl DodoSettings {
    /// Dodo serves test and live mode from separate hosts.
    fn account(&self) -> Option<DodoAccountRow> {
        Some(DodoAccountRow {
            api_key: self.api_key.clone()?,
            webhook_secret: self.webhook_secret.clone(),
            base_url: self.base_url.clone().unwrap_or_else(|| {
                match self.mode {
                    Mode::Test => providers::dodo::TEST_BASE_URL,
                    Mode::Live => providers::dodo::LIVE_BASE_URL,
                }
                .to_owned()
            }),
            mode: self.mode,
        })
    }
}

async fn insert_merchant(
    pool: &PgPool,
    name: &str,
    settings: &ProviderSettings,
) -> Result<NewMerchant, sqlx::Error> {
    let merchant_id = format!("merchant_{}", uuid::Uuid::now_v7().simple());
    // Only the chosen provider's settings are stored.
    let stripe = match settings.provider {
        Provider::Stripe => settings.stripe.account(),
        _ => None,
    };
    let dodo = match settings.provider {
        Provider::Dodo => settings.dodo.account(),
        _ => None,
    };
    // 43 alphanumeric characters carry more than 256 bits of randomness.
    let test_secret_key = format!("sk_test_{}", random_token(43));
    let live_secret_key = format!("sk_live_{}", random_token(43));
    let keys = [
        (Mode::Test, &test_secret_key),
        (Mode::Live, &live_secret_key),
    ]
    .map(|(mode, secret)| {
        (
            format!("key_{}", uuid::Uuid::now_v7().simple()),
            mode,
            hash_secret(secret),
        )
    });
    tables::merchants::insert(
        pool,
        &NewMerchantRow {
            id: &merchant_id,
            name,
            provider: settings.provider,
            stripe: stripe.as_ref(),
            dodo: dodo.as_ref(),
            keys: &keys,
        },
        providers::stripe::DEFAULT_BASE_URL,
        providers::dodo::LIVE_BASE_URL,
    )
    .await?;
    Ok(NewMerchant {
        merchant_id,
        test_secret_key,
        live_secret_key,
    })
}

/// The longest grace period a merchant may give, in days.
pub const MAX_GRACE_PERIOD_DAYS: i32 = 60;

/// Sets how many days (1 to 60; 7 unless set) the merchant's past-due subscriptions have to
/// pay before they are canceled.
pub async fn set_grace_period_days(
    pool: &PgPool,
    merchant_id: &str,
    days: i64,
) -> Result<(), CreateMerchantError> {
    let days = i32::try_from(days)
        .ok()
        .filter(|days| (1..=MAX_GRACE_PERIOD_DAYS).contains(days))
        .ok_or_else(|| {
            CreateMerchantError::Invalid(format!(
                "gracePeriodDays must be from 1 to {MAX_GRACE_PERIOD_DAYS}"
            ))
        })?;
    if !tables::merchants::set_grace_period_days(pool, merchant_id, days).await? {
        return Err(CreateMerchantError::Invalid(format!(
            "no merchant {merchant_id}"
        )));
    }
    Ok(())
}
