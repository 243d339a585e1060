//! Adding a payment method starts with a setup intent, in the merchant's provider's way: the
//! sandbox answers an intent billstream confirms itself (with the card); Stripe a SetupIntent
//! for Stripe.js, whose card arrives by webhook; Dodo a hosted payment link, whose mandate
//! arrives by webhook (`provider_events.rs`).

use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::{Card, PaymentMethod};
use domain::provider::Provider;
use domain::tenant::Tenant;
use projections::read_models::customer_list::{CustomerListProjection, CustomerListView};
use projections::read_models::subscription_list::SubscriptionListProjection;
use projections::tables::{provider_links, sandbox_intents};
use providers::gateway::{CustomerDetails, GatewayError, SetupIntent, SetupIntentRequest};
use providers::{SandboxCard, SandboxCardError};

use crate::context::App;
use crate::customers::NOT_FOUND;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::gateways::{MerchantGateway, CUSTOMER_METADATA, TENANT_METADATA};
use crate::payment_methods::{Added, CollectedPaymentMethod};
use crate::principal::CommandMetadata;

/// The seed's refusal when a Dodo customer has no subscription to carry a mandate.
pub const DODO_NEEDS_SUBSCRIPTION: &str = "Active subscription required to add mandate for Dodo";
const INTENT_NOT_FOUND: &str = "Setup intent not found";
const ALREADY_CONFIRMED: &str = "Setup intent has already been confirmed";

/// What the browser needs to go on adding a payment method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartedSetup {
    /// Confirm it with the card at billstream.
    Sandbox { intent_id: String },
    /// Confirm it with Stripe.js.
    Stripe {
        intent_id: String,
        client_secret: String,
        publishable_key: Option<String>,
    },
    /// Send the customer to the provider's page.
    HostedLink { provider: Provider, url: String },
}

/// A card as a provider's form takes it.
#[derive(Debug, Clone, Default)]
pub struct CardInput {
    pub number: Option<String>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
}

impl App {
    /// Starts adding a payment method for the portal's customer, through the merchant's
    /// provider.
    pub async fn create_setup_intent(
        &self,
        metadata: &CommandMetadata,
        external_customer_id: Option<&str>,
    ) -> Result<StartedSetup, AppError> {
        let tenant = metadata.tenant();
        let customer = self
            .portal_customer(&metadata.principal, external_customer_id)
            .await?;
        let gateway = self.merchant_gateway(tenant).await?;
        gateway.require_mode(tenant)?;
        let tenant_key = tenant.key();
        let provider_metadata = [
            (CUSTOMER_METADATA, customer.id.as_str()),
            (TENANT_METADATA, tenant_key.as_str()),
        ];
        let provider_customer = self
            .provider_customer(&gateway, tenant, &customer, &provider_metadata, false)
            .await?;
        let live =
            SubscriptionListProjection::live_for_customer(&self.pool, tenant, &customer.id).await?;
        let provider_subscription = match &live {
            Some(live) => {
                provider_links::provider_subscription(
                    &self.pool,
                    tenant,
                    live.id.as_str(),
                    gateway.gateway.name(),
                )
                .await?
            }
            None => None,
        };
        let request = SetupIntentRequest {
            provider_customer: provider_customer.as_deref(),
            provider_subscription: provider_subscription.as_deref(),
            metadata: &provider_metadata,
            return_url: None,
        };
        let intent = match gateway.gateway.create_setup_intent(&request).await {
            Err(GatewayError::CustomerMissing) => {
                // The merchant deleted the customer in the provider's dashboard: make a new one.
                let fresh = self
                    .provider_customer(&gateway, tenant, &customer, &provider_metadata, true)
                    .await?;
                let request = SetupIntentRequest {
                    provider_customer: fresh.as_deref(),
                    ..request
                };
                gateway.gateway.create_setup_intent(&request).await
            }
            other => other,
        };
        let intent = intent.map_err(|e| match e {
            GatewayError::NeedsSubscription => match &live {
                None => AppError::conflict(DODO_NEEDS_SUBSCRIPTION),
                Some(live) => AppError::conflict(format!(
                    "Subscription {} has no Dodo subscription yet: Dodo links it when the \
                     checkout's metadata names billstream_subscription_id",
                    live.id
                )),
            },
            other => gateway.error(other),
        })?;
        Ok(match intent {
            SetupIntent::Local => StartedSetup::Sandbox {
                intent_id: self.sandbox_intent(metadata, &customer).await?,
            },
            SetupIntent::Stripe {
                intent_id,
                client_secret,
                publishable_key,
            } => StartedSetup::Stripe {
                intent_id,
                client_secret,
                publishable_key,
            },
            SetupIntent::HostedLink { url } => StartedSetup::HostedLink {
                provider: gateway.provider,
                url,
            },
        })
    }

    /// The customer's customer object at the provider, made the first time (for providers
    /// that keep customers). Concurrent first requests send the same idempotency key, so the
    /// provider makes one customer for them all. `fresh` makes a new one in place of a
    /// customer the provider no longer has.
    async fn provider_customer(
        &self,
        gateway: &MerchantGateway,
        tenant: &Tenant,
        customer: &CustomerListView,
        metadata: &[(&str, &str)],
        fresh: bool,
    ) -> Result<Option<String>, AppError> {
        let provider = gateway.gateway.name();
        if !fresh {
            if let Some(id) = provider_links::provider_customer(
                &self.pool,
                tenant,
                customer.id.as_str(),
                provider,
            )
            .await?
            {
                return Ok(Some(id));
            }
        }
        let idempotency_key = (!fresh).then(|| format!("billstream-customer-{}", customer.id));
        let created = gateway
            .gateway
            .create_customer(
                &CustomerDetails {
                    id: customer.id.as_str(),
                    email: &customer.email,
                    name: customer.name.as_deref(),
                    metadata,
                },
                idempotency_key.as_deref(),
            )
            .await
            .map_err(|e| gateway.error(e))?;
        let Some(created) = created else {
            return Ok(None);
        };
        let remembered = provider_links::remember_provider_customer(
            &self.pool,
            tenant,
            customer.id.as_str(),
            provider,
            &created,
            fresh,
        )
        .await?;
        Ok(Some(remembered))
    }

    /// A sandbox intent, with the payment method id it will add chosen now: however often it
    /// is confirmed, it adds that one method at most.
    async fn sandbox_intent(
        &self,
        metadata: &CommandMetadata,
        customer: &CustomerListView,
    ) -> Result<String, AppError> {
        let intent_id = format!("seti_{}", uuid::Uuid::now_v7().simple());
        sandbox_intents::create(
            &self.pool,
            &intent_id,
            metadata.tenant(),
            customer.id.as_str(),
            metadata
                .new_id::<PaymentMethodId>("payment method")
                .as_str(),
        )
        .await?;
        Ok(intent_id)
    }

    /// Completes a sandbox setup intent with a card: the card is checked as a provider would,
    /// and added to the intent's customer as its default payment method.
    ///
    /// The intent is claimed first: of racing confirms exactly one moves on, the others are
    /// refused, and nothing is held while the card is added. If adding fails the intent is
    /// given back. The claim and the add are one recorded flow (`flows.rs`): if the process
    /// dies after the claim, the card is added by another instance, or by this one restarted;
    /// its payment method id, fixed at the intent's creation, is never added twice.
    pub async fn confirm_sandbox_setup_intent(
        &self,
        metadata: &CommandMetadata,
        intent_id: &str,
        card: CardInput,
    ) -> Result<PaymentMethod, AppError> {
        let (number, exp_month, exp_year) = card_fields(&card)?;
        let principal = &metadata.principal;
        if intent_id.chars().any(char::is_control) {
            return Err(AppError::not_found(INTENT_NOT_FOUND));
        }
        let intent = sandbox_intents::find(&self.pool, intent_id)
            .await?
            // Another tenant's intent, or another customer's for a session: not theirs to know.
            .filter(|intent| {
                intent.tenant == principal.tenant.key()
                    && principal.reaches_customer(&intent.customer_id)
            })
            .ok_or_else(|| AppError::not_found(INTENT_NOT_FOUND))?;
        if intent.confirmed {
            return Err(AppError::conflict(ALREADY_CONFIRMED));
        }
        CustomerListProjection::get(&self.pool, &principal.tenant, &intent.customer_id)
            .await?
            .ok_or_else(|| AppError::not_found(NOT_FOUND))?;
        let card = SandboxCard::parse(number, exp_month, exp_year, self.clock.now())
            .map_err(card_error)?;
        let internal = |e: domain::id::InvalidId| AppError::internal("Internal server error", e);
        let customer_id = CustomerId::parse(&intent.customer_id).map_err(internal)?;
        let payment_method_id =
            PaymentMethodId::parse(&intent.payment_method_id).map_err(internal)?;
        let collected = CollectedPaymentMethod {
            provider: Provider::Sandbox,
            payment_type: "card".to_owned(),
            card: Some(Card {
                brand: card.brand.as_str().to_owned(),
                last_four: card.last_four,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
            }),
            provider_reference: None,
        };
        // Recorded before the claim: a process that dies after the claim leaves a flow that
        // another instance finishes by adding the card, rather than a used-up intent.
        let input = FlowInput::AddPaymentMethod {
            customer_id: customer_id.clone(),
            payment_method_id: payment_method_id.clone(),
            collected: collected.clone(),
        };
        let intent_id = intent_id.to_owned();
        self.in_flow(metadata, input, |app, metadata| async move {
            if !sandbox_intents::claim(&app.pool, &intent_id).await? {
                return Err(AppError::conflict(ALREADY_CONFIRMED));
            }
            // The claim is a step that committed, as a command's append is.
            if let Some(flow) = &metadata.flow {
                flow.committed();
            }
            let added = app
                .add_as_default(&metadata, &customer_id, payment_method_id, collected)
                .await;
            match added {
                Ok(Added::New(method)) => Ok(*method),
                // An earlier confirm added the card, then failed (moving the subscription)
                // and gave the intent back: finish its work rather than add another card.
                Ok(Added::AlreadyAdded(id)) => {
                    app.make_default(&metadata, &customer_id, &id).await?;
                    app.payment_methods
                        .current(id.as_str())
                        .await
                        .map_err(|e| AppError::internal("Failed to add payment method", e))
                }
                Err(error) => {
                    // Give the intent back, so the customer can try again.
                    sandbox_intents::give_back(&app.pool, &intent_id).await?;
                    Err(error)
                }
            }
        })
        .await
    }
}

/// The card fields, present and in range for the card check; refusals are the 400s a
/// provider's card form would show.
fn card_fields(card: &CardInput) -> Result<(&str, u32, i32), AppError> {
    let number = card
        .number
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| AppError::invalid("cardNumber is required"))?;
    let month = card
        .exp_month
        .ok_or_else(|| AppError::invalid("expMonth is required"))?;
    let year = card
        .exp_year
        .ok_or_else(|| AppError::invalid("expYear is required"))?;
    let invalid_expiry = || card_error(SandboxCardError::InvalidExpiry);
    let month = u32::try_from(month).map_err(|_| invalid_expiry())?;
    let year = i32::try_from(year)
        .ok()
        .filter(|y| *y >= 0)
        .ok_or_else(invalid_expiry)?;
    Ok((number, month, year))
}

/// Card refusals in Stripe's words and codes: a malformed card is the caller's to fix (400);
/// a card the "issuer" refused is a 402, as Stripe answers a `card_error`.
fn card_error(error: SandboxCardError) -> AppError {
    let (code, message) = match error {
        SandboxCardError::InvalidNumber => ("invalid_number", "Your card number is invalid"),
        SandboxCardError::InvalidExpiry => {
            ("invalid_expiry", "Your card's expiration date is invalid")
        }
        SandboxCardError::Expired => {
            return AppError::PaymentFailed {
                code: "expired_card".to_owned(),
                message: "Your card has expired".to_owned(),
            }
        }
        SandboxCardError::Declined => {
            return AppError::PaymentFailed {
                code: "card_declined".to_owned(),
                message: "Your card was declined".to_owned(),
            }
        }
    };
    AppError::Invalid {
        code,
        message: message.to_owned(),
    }
}
