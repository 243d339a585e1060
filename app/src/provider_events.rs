//! What a provider's webhook delivery means for billstream. Each delivery is signed with the
//! merchant's endpoint secret, verified over the raw body before anything is read, and refused
//! (nothing changes) when forged or older than five minutes. Each provider event id is
//! processed once: the webhook ledger records it after its effects, so a delivery that failed
//! half way is finished by the provider's retry, and the effects are safe to repeat.
//!
//! The tenant a delivery acts in: Stripe says, with `livemode`; Dodo does not, so the merchant's
//! Dodo settings name the mode its Dodo account serves. Events are recorded with the actor
//! `webhook:<provider>:<event id>`.

use std::collections::BTreeMap;

use domain::id::{CustomerId, PaymentMethodId, SubscriptionId};
use domain::payment::SettlementOutcome;
use domain::payment_method::Card;
use domain::provider::Provider;
use domain::tenant::{Mode, Tenant};
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::tables::{provider_links, webhook_ledger};
use providers::gateway::EventMeaning;
use reqwest::header::HeaderMap;

use crate::context::App;
use crate::error::AppError;
use crate::gateways::{
    provider_name, MerchantGateway, CUSTOMER_METADATA, SUBSCRIPTION_METADATA, TENANT_METADATA,
};
use crate::payment_methods::{Added, CollectedPaymentMethod};
use crate::principal::{CommandMetadata, Principal};

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Processed,
    /// The event was processed before; this delivery changed nothing.
    Duplicate,
}

fn refused(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::Invalid {
        code,
        message: message.into(),
    }
}

impl App {
    /// Takes one webhook delivery of `provider` for merchant `merchant_id`. An unknown merchant
    /// is refused like a bad signature: the sender has the wrong URL and nothing here changes.
    pub async fn receive_webhook(
        &self,
        provider: Provider,
        merchant_id: &str,
        headers: &HeaderMap,
        body: &[u8],
        request_id: Option<String>,
    ) -> Result<Received, AppError> {
        let unknown = || refused("unknown_merchant", "Unknown merchant");
        // A control character is in no merchant's id (and PostgreSQL could not even compare a
        // NUL): such a URL names no merchant.
        if merchant_id.chars().any(char::is_control) {
            return Err(unknown());
        }
        let settings = self
            .merchant_settings(merchant_id)
            .await?
            .ok_or_else(unknown)?;
        let not_configured = || {
            refused(
                "provider_not_configured",
                format!(
                    "{} webhooks are not configured for this merchant",
                    provider_name(provider)
                ),
            )
        };
        let gateway = match MerchantGateway::of(&settings, provider) {
            Ok(gateway) => gateway,
            Err(AppError::Conflict { .. }) => return Err(not_configured()),
            Err(other) => return Err(other),
        };
        let delivery = gateway
            .gateway
            .verify_delivery(headers, body, self.clock.now())
            .map_err(|e| match e {
                providers::GatewayError::NotConfigured(_) => not_configured(),
                other => gateway.error(other),
            })?;
        let ledger_provider = provider.as_str();
        if webhook_ledger::already_processed(&self.pool, ledger_provider, merchant_id, &delivery.id)
            .await?
        {
            return Ok(Received::Duplicate);
        }
        let interpreted = gateway
            .gateway
            .interpret(body)
            .map_err(|e| gateway.error(e))?;
        let live = delivery
            .livemode
            .or(gateway.gateway.serves_live())
            .unwrap_or(true);
        let tenant = Tenant::new(merchant_id, if live { Mode::Live } else { Mode::Test });
        let metadata = CommandMetadata {
            principal: Principal {
                tenant,
                key_id: format!("webhook:{ledger_provider}:{}", delivery.id),
                session: None,
            },
            request_id,
            flow: None,
        };
        match interpreted.meaning {
            EventMeaning::PaymentMethodCollected {
                payment_method,
                metadata: object_metadata,
            } => {
                self.payment_method_collected(
                    &gateway,
                    &metadata,
                    &payment_method,
                    &object_metadata,
                    &delivery.id,
                )
                .await?
            }
            EventMeaning::SubscriptionPaymentMethod {
                provider_subscription,
                provider_customer,
                payment_method,
                metadata: object_metadata,
            } => {
                self.subscription_payment_method(
                    &gateway,
                    &metadata,
                    &provider_subscription,
                    &provider_customer,
                    payment_method.as_deref(),
                    &object_metadata,
                )
                .await?
            }
            EventMeaning::PaymentSettled {
                payment_id,
                provider_reference,
                failure,
            } => {
                let outcome = match failure {
                    None => SettlementOutcome::Succeeded {
                        provider_reference: Some(provider_reference),
                    },
                    Some((code, message)) => SettlementOutcome::Failed {
                        message,
                        code: Some(code),
                    },
                };
                self.settle_reported_charge(&metadata, &payment_id, outcome)
                    .await?
            }
            EventMeaning::SubscriptionCharged {
                provider_subscription,
                provider_payment_id,
                amount_cents,
                failure,
            } => {
                self.record_provider_charge(
                    &metadata,
                    gateway.gateway.name(),
                    &provider_subscription,
                    &provider_payment_id,
                    amount_cents,
                    failure,
                )
                .await?
            }
            EventMeaning::Other => {}
        }
        webhook_ledger::record_processed(
            &self.pool,
            ledger_provider,
            merchant_id,
            &delivery.id,
            &interpreted.event_type,
        )
        .await?;
        Ok(Received::Processed)
    }

    /// A setup intent billstream made succeeded (Stripe): the card the customer entered is
    /// added to the customer its metadata names.
    async fn payment_method_collected(
        &self,
        gateway: &MerchantGateway,
        metadata: &CommandMetadata,
        reference: &str,
        object_metadata: &BTreeMap<String, String>,
        event_id: &str,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant();
        // Setup intents billstream did not make (the merchant's own) are not ours to act on.
        let Some(customer_id) = object_metadata.get(CUSTOMER_METADATA) else {
            tracing::info!(event = %event_id, "setup intent without billstream metadata: ignored");
            return Ok(());
        };
        if object_metadata
            .get(TENANT_METADATA)
            .is_some_and(|named| *named != tenant.key())
        {
            tracing::warn!(event = %event_id, "setup intent of another mode: ignored");
            return Ok(());
        }
        let Some(customer_id) = self.live_customer_id(tenant, customer_id).await? else {
            tracing::info!(event = %event_id, "setup intent for a customer that is gone: ignored");
            return Ok(());
        };
        self.add_provider_payment_method(gateway, metadata, &customer_id, reference, None)
            .await
    }

    /// A provider subscription is active or changed (Dodo): link it to the billstream
    /// subscription its metadata names, and add the payment method it is charged to when it
    /// is new (the customer completed the payment link).
    async fn subscription_payment_method(
        &self,
        gateway: &MerchantGateway,
        metadata: &CommandMetadata,
        provider_subscription: &str,
        provider_customer: &str,
        payment_method: Option<&str>,
        object_metadata: &BTreeMap<String, String>,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant();
        let provider = gateway.gateway.name();
        if let Some(ours) = object_metadata.get(SUBSCRIPTION_METADATA) {
            self.link_provider_subscription(tenant, provider, ours, provider_subscription)
                .await?;
        }
        let Some(payment_method) = payment_method else {
            return Ok(());
        };
        let Some(ours) = provider_links::subscription_of_provider_subscription(
            &self.pool,
            tenant,
            provider,
            provider_subscription,
        )
        .await?
        else {
            tracing::info!(
                provider_subscription,
                "provider subscription linked to no billstream subscription: ignored"
            );
            return Ok(());
        };
        let owner = self
            .subscriptions
            .current(&ours)
            .await
            .map_err(|e| AppError::internal("Internal server error", e))?
            .customer_id;
        let Some(owner) = owner else {
            return Ok(());
        };
        let Some(customer_id) = self.live_customer_id(tenant, owner.as_str()).await? else {
            tracing::info!(subscription = %ours, "mandate for a customer that is gone: ignored");
            return Ok(());
        };
        self.add_provider_payment_method(
            gateway,
            metadata,
            &customer_id,
            payment_method,
            Some(provider_customer),
        )
        .await
    }

    /// Adds the provider's payment method `reference` to the customer, as described by the
    /// provider, unless it was added already — then the earlier add is finished instead: it
    /// may have stopped before the subscription moved.
    async fn add_provider_payment_method(
        &self,
        gateway: &MerchantGateway,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        reference: &str,
        provider_customer: Option<&str>,
    ) -> Result<(), AppError> {
        let existing = PaymentMethodListProjection::by_provider_reference(
            &self.pool,
            metadata.tenant(),
            gateway.gateway.name(),
            reference,
        )
        .await?;
        if let Some(existing) = existing {
            return self.make_default(metadata, customer_id, &existing.id).await;
        }
        let method = gateway
            .gateway
            .describe_payment_method(reference, provider_customer)
            .await
            .map_err(|e| gateway.error(e))?;
        let card = method.card.map(|card| Card {
            brand: card.brand,
            last_four: card.last_four,
            exp_month: card.exp_month,
            exp_year: card.exp_year,
        });
        let collected = CollectedPaymentMethod {
            provider: gateway.provider,
            payment_type: method.payment_type,
            card,
            provider_reference: Some(method.reference),
        };
        let id = PaymentMethodId::generate();
        match self
            .add_collected_payment_method(metadata, customer_id, id, collected)
            .await?
        {
            Added::New(_) => Ok(()),
            Added::AlreadyAdded(existing) => {
                self.make_default(metadata, customer_id, &existing).await
            }
        }
    }

    /// Links the provider's subscription to billstream subscription `ours` when `ours` is a
    /// subscription of this tenant; a name that is not is ignored, so a delivery cannot reach
    /// another tenant. The first link of either side stands.
    async fn link_provider_subscription(
        &self,
        tenant: &Tenant,
        provider: &str,
        ours: &str,
        provider_subscription: &str,
    ) -> Result<(), AppError> {
        let Ok(id) = SubscriptionId::parse(ours) else {
            tracing::warn!(ours, "provider metadata names no subscription id: ignored");
            return Ok(());
        };
        let subscription = self
            .subscriptions
            .current(id.as_str())
            .await
            .map_err(|e| AppError::internal("Internal server error", e))?;
        if !subscription.exists() || subscription.tenant.as_ref() != Some(tenant) {
            tracing::warn!(
                ours,
                "provider metadata names a subscription of no such tenant: ignored"
            );
            return Ok(());
        }
        let linked = provider_links::link_provider_subscription(
            &self.pool,
            tenant,
            id.as_str(),
            provider,
            provider_subscription,
        )
        .await?;
        if linked {
            tracing::info!(subscription = %id, provider_subscription, "provider subscription linked");
        }
        Ok(())
    }

    /// The customer, when it is a live customer of the tenant.
    async fn live_customer_id(
        &self,
        tenant: &Tenant,
        customer_id: &str,
    ) -> Result<Option<CustomerId>, AppError> {
        let Ok(id) = CustomerId::parse(customer_id) else {
            return Ok(None);
        };
        let live = CustomerListProjection::get(&self.pool, tenant, id.as_str())
            .await?
            .is_some();
        Ok(live.then_some(id))
    }
}
