//! A merchant's payment provider as requests use it: which provider the merchant bills
//! through, its credentials (set by `billstream merchants create`, migration 0012), and the
//! clients that talk to it.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use domain::provider::Provider;
use domain::tenant::Mode;
use providers::{DodoClient, StandardWebhookSecret, StripeClient};
use sqlx::PgPool;

use crate::error::ApiError;

/// A provider slower than this fails the request rather than hold it (and a connection) open.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection pool for every merchant's client: merchants share Stripe's and Dodo's hosts,
/// and a pool per request would pay a TLS handshake each time.
fn http_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                // Building fails only when the TLS backend cannot start, which no request to a
                // provider could survive either.
                .expect("the HTTP client's TLS backend initialises")
        })
        .clone()
}

/// A merchant's provider and the credentials of its account there.
#[derive(Debug, Clone)]
pub struct MerchantProvider {
    pub merchant_id: String,
    pub provider: Provider,
    pub stripe: Option<StripeAccount>,
    pub dodo: Option<DodoAccount>,
}

/// The merchant's Stripe account; `secret_key` is present, the rest may not be.
#[derive(Clone)]
pub struct StripeAccount {
    secret_key: String,
    pub publishable_key: Option<String>,
    webhook_secret: Option<String>,
    base_url: String,
}

/// The merchant's Dodo account and the billstream mode it serves.
#[derive(Clone)]
pub struct DodoAccount {
    api_key: String,
    webhook_secret: Option<String>,
    base_url: String,
    pub mode: Mode,
}

// The credentials must never reach a log line.
impl std::fmt::Debug for StripeAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeAccount")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DodoAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DodoAccount")
            .field("base_url", &self.base_url)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
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

impl MerchantProvider {
    /// The merchant's provider settings; `None` for a merchant that does not exist.
    pub async fn load(pool: &PgPool, merchant_id: &str) -> Result<Option<Self>, sqlx::Error> {
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
        Ok(Some(Self {
            merchant_id: merchant_id.to_owned(),
            // The column's CHECK allows only the three names.
            provider: Provider::parse(&provider).unwrap_or_default(),
            stripe: stripe_secret_key.map(|secret_key| StripeAccount {
                secret_key,
                publishable_key: stripe_publishable_key,
                webhook_secret: stripe_webhook_secret,
                base_url: stripe_base_url,
            }),
            dodo: dodo_api_key.map(|api_key| DodoAccount {
                api_key,
                webhook_secret: dodo_webhook_secret,
                base_url: dodo_base_url,
                mode: Mode::parse(&dodo_mode).unwrap_or(Mode::Live),
            }),
        }))
    }

    /// The Stripe account, or the error a request gets when the merchant has none.
    pub fn stripe_account(&self) -> Result<&StripeAccount, ApiError> {
        self.stripe.as_ref().ok_or_else(|| not_configured("Stripe"))
    }

    /// The Dodo account, or the error a request gets when the merchant has none.
    pub fn dodo_account(&self) -> Result<&DodoAccount, ApiError> {
        self.dodo.as_ref().ok_or_else(|| not_configured("Dodo"))
    }
}

impl StripeAccount {
    pub fn client(&self) -> StripeClient {
        StripeClient::with_http_client(http_client(), &self.base_url, &self.secret_key)
    }

    /// The mode Stripe runs this key in, read from its prefix (`sk_test_`, `rk_live_`, …);
    /// `None` for a key of another shape.
    pub fn mode(&self) -> Option<Mode> {
        let key = &self.secret_key;
        if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
            Some(Mode::Test)
        } else if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
            Some(Mode::Live)
        } else {
            None
        }
    }

    pub fn webhook_secret(&self) -> Option<&str> {
        self.webhook_secret.as_deref()
    }
}

impl DodoAccount {
    pub fn client(&self) -> DodoClient {
        DodoClient::with_http_client(http_client(), &self.base_url, &self.api_key)
    }

    /// The endpoint secret, parsed. It was checked when the merchant was made, so a secret
    /// that no longer parses is our fault, not the caller's.
    pub fn webhook_secret(&self) -> Result<Option<StandardWebhookSecret>, ApiError> {
        self.webhook_secret
            .as_deref()
            .map(StandardWebhookSecret::parse)
            .transpose()
            .map_err(|e| ApiError::internal("Internal server error", e))
    }
}

fn not_configured(provider: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "provider_not_configured",
        format!("{provider} is not configured for this merchant"),
    )
}

/// A provider account serves one mode: a test key cannot reach live data, nor the other way
/// round, just as billstream's own keys cannot. `None` (a key whose mode we cannot tell) passes.
pub fn require_mode(
    provider: &str,
    account_mode: Option<Mode>,
    request_mode: Mode,
) -> Result<(), ApiError> {
    match account_mode {
        Some(mode) if mode != request_mode => Err(ApiError::new(
            StatusCode::CONFLICT,
            "provider_mode_mismatch",
            format!(
                "This merchant's {provider} account is in {} mode; use a {} mode key",
                mode.as_str(),
                mode.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// A provider failed or refused a call: the caller gets a 502 that names the provider and what
/// failed, never the provider's answer (it may quote our request); the detail goes to the log.
pub fn provider_failed(provider: &str, action: &str, detail: impl std::fmt::Display) -> ApiError {
    tracing::warn!(provider, action, error = %detail, "payment provider call failed");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "provider_error",
        format!("{provider} could not {action}; try again later"),
    )
}
