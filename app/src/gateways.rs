//! A merchant's payment provider as the use-cases reach it: the [`PaymentGateway`] of the
//! provider a request or a webhook needs, built from the merchant's settings (migration 0012),
//! over one HTTP connection pool for every merchant.

use std::sync::OnceLock;
use std::time::Duration;

use domain::provider::Provider;
use domain::tenant::{Mode, Tenant};
use projections::tables::merchants::{self, MerchantProviderRow};
use providers::gateway::{DodoGateway, GatewayError, SandboxGateway, StripeGateway};
use providers::{DodoClient, PaymentGateway, StandardWebhookSecret, StripeClient};

use crate::context::App;
use crate::error::AppError;

/// Metadata keys on the provider's objects that lead a webhook back to ours.
pub const CUSTOMER_METADATA: &str = "billstream_customer_id";
pub const TENANT_METADATA: &str = "billstream_tenant";
/// The metadata key of a Dodo subscription that names the billstream subscription it pays
/// for: the merchant sets it in the Dodo checkout.
pub const SUBSCRIPTION_METADATA: &str = "billstream_subscription_id";

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

/// The provider's name as the API words it.
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Sandbox => "Sandbox",
        Provider::Stripe => "Stripe",
        Provider::Dodo => "Dodo",
    }
}

/// The caller's error for a provider call that failed. Refusals and declines carry their own
/// code; anything else is the provider's failure (502), named without its answer.
pub fn gateway_error(provider: Provider, error: GatewayError) -> AppError {
    let name = provider_name(provider);
    match error {
        GatewayError::Refused { code, message } => AppError::Invalid { code, message },
        GatewayError::Declined { code, message } => AppError::PaymentFailed { code, message },
        GatewayError::NotConfigured(_) => not_configured(name),
        GatewayError::Failed { action, detail } => AppError::provider_failed(name, action, detail),
        other => AppError::provider_failed(name, "complete the request", other),
    }
}

fn not_configured(provider: &str) -> AppError {
    AppError::Conflict {
        code: "provider_not_configured",
        message: format!("{provider} is not configured for this merchant"),
    }
}

/// A merchant's gateway for one provider, with what the use-cases need to know of it.
pub struct MerchantGateway {
    pub provider: Provider,
    pub gateway: Box<dyn PaymentGateway>,
}

impl MerchantGateway {
    /// The gateway of `provider` from the merchant's settings, or the 409 a request gets when
    /// the merchant has no account there.
    pub fn of(settings: &MerchantProviderRow, provider: Provider) -> Result<Self, AppError> {
        let gateway: Box<dyn PaymentGateway> = match provider {
            Provider::Sandbox => Box::new(SandboxGateway),
            Provider::Stripe => {
                let account = settings
                    .stripe
                    .as_ref()
                    .ok_or_else(|| not_configured("Stripe"))?;
                Box::new(StripeGateway::new(
                    StripeClient::with_http_client(
                        http_client(),
                        &account.base_url,
                        &account.secret_key,
                    ),
                    &account.secret_key,
                    account.publishable_key.clone(),
                    account.webhook_secret.clone(),
                ))
            }
            Provider::Dodo => {
                let account = settings
                    .dodo
                    .as_ref()
                    .ok_or_else(|| not_configured("Dodo"))?;
                // The secret was checked when the merchant was made, so one that no longer
                // parses is our fault, not the caller's.
                let secret = account
                    .webhook_secret
                    .as_deref()
                    .map(StandardWebhookSecret::parse)
                    .transpose()
                    .map_err(|e| AppError::internal("Internal server error", e))?;
                Box::new(DodoGateway::new(
                    DodoClient::with_http_client(
                        http_client(),
                        &account.base_url,
                        &account.api_key,
                    ),
                    secret,
                    account.mode == Mode::Live,
                ))
            }
        };
        Ok(Self { provider, gateway })
    }

    /// A provider account serves one mode: a test key cannot reach live data, nor the other
    /// way round, just as billstream's own keys cannot. An account whose mode cannot be told
    /// passes.
    pub fn require_mode(&self, tenant: &Tenant) -> Result<(), AppError> {
        let account_mode = match self.gateway.serves_live() {
            Some(true) => Mode::Live,
            Some(false) => Mode::Test,
            None => return Ok(()),
        };
        if account_mode == tenant.mode {
            return Ok(());
        }
        Err(AppError::Conflict {
            code: "provider_mode_mismatch",
            message: format!(
                "This merchant's {} account is in {} mode; use a {} mode key",
                provider_name(self.provider),
                account_mode.as_str(),
                account_mode.as_str()
            ),
        })
    }

    /// The caller's error for a call of this gateway that failed.
    pub fn error(&self, error: GatewayError) -> AppError {
        gateway_error(self.provider, error)
    }
}

impl App {
    /// The merchant's provider settings; `None` for a merchant that does not exist.
    pub(crate) async fn merchant_settings(
        &self,
        merchant_id: &str,
    ) -> Result<Option<MerchantProviderRow>, AppError> {
        Ok(merchants::provider_settings(&self.pool, merchant_id).await?)
    }

    /// The gateway of the provider the tenant's merchant bills through.
    pub(crate) async fn merchant_gateway(
        &self,
        tenant: &Tenant,
    ) -> Result<MerchantGateway, AppError> {
        let settings = self
            .merchant_settings(&tenant.merchant_id)
            .await?
            .ok_or_else(|| {
                AppError::internal("Internal server error", "the key's merchant is gone")
            })?;
        MerchantGateway::of(&settings, settings.provider)
    }
}
