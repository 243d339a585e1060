//! Provider webhooks: `POST /v1/webhooks/stripe/{merchantId}` and
//! `POST /v1/webhooks/dodo/{merchantId}`. No bearer key: each delivery is signed with the
//! merchant's endpoint secret, verified over the raw body before anything is read, and refused
//! (400, nothing changes) when forged or older than five minutes. Each provider event id is
//! processed once (`webhook_events.rs`).
//!
//! The tenant a delivery acts in: Stripe says, with `livemode`; Dodo does not, so the merchant's
//! Dodo settings name the mode its Dodo account serves. Events are recorded with the actor
//! `webhook:<provider>:<event id>`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use domain::id::{CustomerId, PaymentMethodId, SubscriptionId};
use domain::payment_method::Card;
use domain::provider::Provider;
use domain::tenant::{Mode, Tenant};
use projections::customer_list::CustomerListProjection;
use projections::payment_method_list::PaymentMethodListProjection;
use providers::dodo::DodoCard;
use providers::dodo_webhook::{event_types, DodoWebhookPayload};
use providers::standard_webhooks::WebhookHeaders;
use providers::stripe_webhook::{self, StripeEvent, SETUP_INTENT_SUCCEEDED};
use providers::{StandardWebhookError, StripeWebhookError};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, ToSchema};

use crate::auth::Principal;
use crate::commands::CommandMetadata;
use crate::error::ApiError;
use crate::payment_providers::{provider_failed, DodoAccount, MerchantProvider, StripeAccount};
use crate::provider_ids;
use crate::provider_payment_methods::{
    add_collected_payment_method, make_default, Added, CollectedPaymentMethod,
};
use crate::routes::setup_intents::{CUSTOMER_METADATA, TENANT_METADATA};
use crate::state::AppState;
use crate::webhook_events;

/// The metadata key of a Dodo subscription that names the billstream subscription it pays
/// for: the merchant sets it in the Dodo checkout.
pub const SUBSCRIPTION_METADATA: &str = "billstream_subscription_id";

/// What a webhook answers when it took the delivery; any 2xx tells the provider to stop.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceived {
    pub received: bool,
    /// The event was processed before; this delivery changed nothing.
    pub duplicate: bool,
}

fn received(duplicate: bool) -> Json<WebhookReceived> {
    Json(WebhookReceived {
        received: true,
        duplicate,
    })
}

fn refused(code: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

const INVALID_SIGNATURE: &str = "Invalid webhook signature";
const STALE: &str = "Webhook timestamp is outside the 5-minute tolerance";
const INVALID_PAYLOAD: &str = "Invalid webhook payload";

/// The merchant of a webhook URL. An unknown one is a 400, like a bad signature: the sender
/// has the wrong URL and nothing here changes.
async fn merchant(state: &AppState, merchant_id: &str) -> Result<MerchantProvider, ApiError> {
    MerchantProvider::load(&state.pool, merchant_id)
        .await?
        .ok_or_else(|| refused("unknown_merchant", "Unknown merchant"))
}

fn not_configured(provider: &str) -> ApiError {
    refused(
        "provider_not_configured",
        &format!("{provider} webhooks are not configured for this merchant"),
    )
}

/// The metadata of the commands a webhook event causes: its tenant, and the event as the actor.
fn webhook_metadata(
    tenant: Tenant,
    provider: Provider,
    event_id: &str,
    headers: &HeaderMap,
) -> CommandMetadata {
    CommandMetadata {
        principal: Principal {
            tenant,
            key_id: format!("webhook:{}:{event_id}", provider.as_str()),
            session: None,
        },
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        idempotency_key: None,
    }
}

/// Stripe's webhook. On `setup_intent.succeeded` the card the customer entered in Stripe.js is
/// added to the billstream customer named in the setup intent's metadata; other events are
/// acknowledged and ignored.
#[utoipa::path(post, path = "/v1/webhooks/stripe/{merchantId}", tag = "webhooks",
    params(("merchantId" = String, Path, description = "The merchant the endpoint belongs to")),
    request_body(content = Object, description = "A Stripe event, as Stripe signs it"),
    responses((status = 200, body = WebhookReceived), (status = 400, body = crate::routes::ErrorBody),
        (status = 502, body = crate::routes::ErrorBody)),
    security(("stripe_signature" = [])))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    Path(merchant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceived>, ApiError> {
    let merchant = merchant(&state, &merchant_id).await?;
    let account = merchant
        .stripe
        .as_ref()
        .filter(|a| a.webhook_secret().is_some())
        .ok_or_else(|| not_configured("Stripe"))?;
    let secret = account.webhook_secret().unwrap_or_default();
    let signature = headers
        .get(stripe_webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let event = stripe_webhook::construct_event(&body, signature, secret, Utc::now())
        .map_err(stripe_refusal)?;

    let provider = Provider::Stripe.as_str();
    if webhook_events::already_processed(&state.pool, provider, &merchant_id, &event.id).await? {
        return Ok(received(true));
    }
    let mode = if event.livemode {
        Mode::Live
    } else {
        Mode::Test
    };
    let tenant = Tenant::new(merchant_id.clone(), mode);
    let metadata = webhook_metadata(tenant, Provider::Stripe, &event.id, &headers);
    if event.event_type == SETUP_INTENT_SUCCEEDED {
        stripe_setup_intent_succeeded(&state, account, &metadata, &event).await?;
    }
    webhook_events::record_processed(
        &state.pool,
        provider,
        &merchant_id,
        &event.id,
        &event.event_type,
    )
    .await?;
    Ok(received(false))
}

fn stripe_refusal(error: StripeWebhookError) -> ApiError {
    match error {
        StripeWebhookError::MissingHeader => {
            refused("missing_signature", "Missing Stripe-Signature header")
        }
        StripeWebhookError::MalformedHeader(_) | StripeWebhookError::SignatureMismatch => {
            refused("invalid_signature", INVALID_SIGNATURE)
        }
        StripeWebhookError::StaleTimestamp { .. } | StripeWebhookError::FutureTimestamp { .. } => {
            refused("stale_webhook", STALE)
        }
        StripeWebhookError::InvalidPayload(_) | StripeWebhookError::UnexpectedEventType { .. } => {
            refused("invalid_payload", INVALID_PAYLOAD)
        }
    }
}

async fn stripe_setup_intent_succeeded(
    state: &AppState,
    account: &StripeAccount,
    metadata: &CommandMetadata,
    event: &StripeEvent,
) -> Result<(), ApiError> {
    let intent = event.setup_intent_succeeded().map_err(stripe_refusal)?;
    let tenant = &metadata.principal.tenant;
    // Setup intents billstream did not make (the merchant's own) are not ours to act on.
    let Some(customer_id) = intent.metadata.get(CUSTOMER_METADATA) else {
        tracing::info!(event = %event.id, "setup intent without billstream metadata: ignored");
        return Ok(());
    };
    if intent
        .metadata
        .get(TENANT_METADATA)
        .is_some_and(|named| *named != tenant.key())
    {
        tracing::warn!(event = %event.id, "setup intent of another mode: ignored");
        return Ok(());
    }
    let Some(customer_id) = live_customer(state, tenant, customer_id).await? else {
        tracing::info!(event = %event.id, "setup intent for a customer that is gone: ignored");
        return Ok(());
    };
    let provider = Provider::Stripe.as_str();
    if let Some(existing) = PaymentMethodListProjection::by_provider_reference(
        &state.pool,
        &tenant.key(),
        provider,
        &intent.payment_method,
    )
    .await?
    {
        return finish_earlier_add(state, metadata, &customer_id, &existing.id).await;
    }
    let method = account
        .client()
        .retrieve_payment_method(&intent.payment_method)
        .await
        .map_err(|e| provider_failed("Stripe", "return the payment method", e))?;
    let collected = CollectedPaymentMethod {
        provider: Provider::Stripe,
        payment_type: method.kind,
        card: method.card.map(|card| Card {
            brand: card.brand,
            last_four: card.last4,
            exp_month: card.exp_month,
            exp_year: card.exp_year,
        }),
        provider_reference: Some(method.id),
    };
    add(state, metadata, &customer_id, collected).await
}

/// Dodo's webhook. `subscription.active` and `subscription.updated` link the Dodo subscription
/// to the billstream subscription its metadata names, and add the payment method the Dodo
/// subscription is charged to when it is new (the customer completed the payment link);
/// other events are acknowledged and ignored.
#[utoipa::path(post, path = "/v1/webhooks/dodo/{merchantId}", tag = "webhooks",
    params(("merchantId" = String, Path, description = "The merchant the endpoint belongs to")),
    request_body(content = Object, description = "A Dodo event, signed by Standard Webhooks"),
    responses((status = 200, body = WebhookReceived), (status = 400, body = crate::routes::ErrorBody),
        (status = 502, body = crate::routes::ErrorBody)),
    security(("standard_webhooks_signature" = [])))]
pub async fn dodo_webhook(
    State(state): State<AppState>,
    Path(merchant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceived>, ApiError> {
    let merchant = merchant(&state, &merchant_id).await?;
    let account = merchant
        .dodo
        .as_ref()
        .ok_or_else(|| not_configured("Dodo"))?;
    let secret = account
        .webhook_secret()?
        .ok_or_else(|| not_configured("Dodo"))?;
    let verified = secret
        .verify(
            &WebhookHeaders::from_header_map(&headers),
            &body,
            Utc::now(),
        )
        .map_err(dodo_refusal)?;

    let provider = Provider::Dodo.as_str();
    if webhook_events::already_processed(&state.pool, provider, &merchant_id, &verified.id).await? {
        return Ok(received(true));
    }
    let payload = DodoWebhookPayload::parse(&body)
        .map_err(|_| refused("invalid_payload", INVALID_PAYLOAD))?;
    let tenant = Tenant::new(merchant_id.clone(), account.mode);
    let metadata = webhook_metadata(tenant, Provider::Dodo, &verified.id, &headers);
    if matches!(
        payload.event_type.as_str(),
        event_types::SUBSCRIPTION_ACTIVE | event_types::SUBSCRIPTION_UPDATED
    ) {
        dodo_subscription_event(&state, account, &metadata, &payload).await?;
    }
    webhook_events::record_processed(
        &state.pool,
        provider,
        &merchant_id,
        &verified.id,
        &payload.event_type,
    )
    .await?;
    Ok(received(false))
}

fn dodo_refusal(error: StandardWebhookError) -> ApiError {
    match error {
        StandardWebhookError::MissingHeader(header) => {
            refused("missing_signature", &format!("Missing {header} header"))
        }
        StandardWebhookError::StaleTimestamp { .. }
        | StandardWebhookError::FutureTimestamp { .. } => refused("stale_webhook", STALE),
        StandardWebhookError::InvalidSecret
        | StandardWebhookError::MalformedTimestamp
        | StandardWebhookError::MalformedSignature
        | StandardWebhookError::SignatureMismatch => {
            refused("invalid_signature", INVALID_SIGNATURE)
        }
    }
}

async fn dodo_subscription_event(
    state: &AppState,
    account: &DodoAccount,
    metadata: &CommandMetadata,
    payload: &DodoWebhookPayload,
) -> Result<(), ApiError> {
    let subscription = payload
        .subscription()
        .map_err(|_| refused("invalid_payload", INVALID_PAYLOAD))?;
    let tenant = &metadata.principal.tenant;
    let provider = Provider::Dodo.as_str();
    if let Some(ours) = subscription.metadata.get(SUBSCRIPTION_METADATA) {
        link_dodo_subscription(state, tenant, ours, &subscription.subscription_id).await?;
    }
    let Some(payment_method_id) = subscription.payment_method_id.as_deref() else {
        return Ok(());
    };
    let Some(ours) = provider_ids::subscription_of_provider_subscription(
        &state.pool,
        tenant,
        provider,
        &subscription.subscription_id,
    )
    .await?
    else {
        tracing::info!(dodo_subscription = %subscription.subscription_id,
            "Dodo subscription linked to no billstream subscription: ignored");
        return Ok(());
    };
    let owner = state
        .subscriptions
        .current(&ours)
        .await
        .map_err(|e| ApiError::internal("Internal server error", e))?
        .customer_id;
    let Some(owner) = owner else {
        return Ok(());
    };
    let Some(customer_id) = live_customer(state, tenant, owner.as_str()).await? else {
        tracing::info!(subscription = %ours, "mandate for a customer that is gone: ignored");
        return Ok(());
    };
    if let Some(existing) = PaymentMethodListProjection::by_provider_reference(
        &state.pool,
        &tenant.key(),
        provider,
        payment_method_id,
    )
    .await?
    {
        return finish_earlier_add(state, metadata, &customer_id, &existing.id).await;
    }
    // The event names the method; Dodo's list of the customer's methods describes it.
    let methods = account
        .client()
        .list_customer_payment_methods(&subscription.customer.customer_id)
        .await
        .map_err(|e| provider_failed("Dodo", "list the customer's payment methods", e))?;
    let method = methods
        .into_iter()
        .find(|m| m.payment_method_id == payment_method_id);
    let collected = CollectedPaymentMethod {
        provider: Provider::Dodo,
        // Without Dodo's description it is still the mandate the subscription is charged to.
        payment_type: method
            .as_ref()
            .map_or_else(|| "mandate".to_owned(), |m| m.payment_method.clone()),
        card: method
            .as_ref()
            .and_then(|m| m.card.as_ref())
            .and_then(dodo_card),
        provider_reference: Some(payment_method_id.to_owned()),
    };
    add(state, metadata, &customer_id, collected).await
}

/// Links the Dodo subscription to billstream subscription `ours` when `ours` is a subscription
/// of this tenant; a name that is not is ignored, so a delivery cannot reach another tenant.
async fn link_dodo_subscription(
    state: &AppState,
    tenant: &Tenant,
    ours: &str,
    dodo_subscription_id: &str,
) -> Result<(), ApiError> {
    let Ok(id) = SubscriptionId::parse(ours) else {
        tracing::warn!(ours, "Dodo metadata names no subscription id: ignored");
        return Ok(());
    };
    let subscription = state
        .subscriptions
        .current(id.as_str())
        .await
        .map_err(|e| ApiError::internal("Internal server error", e))?;
    if !subscription.exists() || subscription.tenant.as_ref() != Some(tenant) {
        tracing::warn!(
            ours,
            "Dodo metadata names a subscription of no such tenant: ignored"
        );
        return Ok(());
    }
    let linked = provider_ids::link_provider_subscription(
        &state.pool,
        tenant,
        id.as_str(),
        Provider::Dodo.as_str(),
        dodo_subscription_id,
    )
    .await?;
    if linked {
        tracing::info!(subscription = %id, dodo_subscription = dodo_subscription_id,
            "Dodo subscription linked");
    }
    Ok(())
}

/// Dodo's card summary as ours: networks come uppercase (`VISA`) and expiries as text.
fn dodo_card(card: &DodoCard) -> Option<Card> {
    let network = card.card_network.as_deref()?.trim().to_lowercase();
    let brand = match network.as_str() {
        "american express" | "american_express" | "americanexpress" => "amex".to_owned(),
        _ => network,
    };
    let exp_month: u32 = card.expiry_month.as_deref()?.trim().parse().ok()?;
    let exp_year: i32 = card.expiry_year.as_deref()?.trim().parse().ok()?;
    let exp_year = if (0..100).contains(&exp_year) {
        2000 + exp_year
    } else {
        exp_year
    };
    Some(Card {
        brand,
        last_four: card.last4_digits.clone()?,
        exp_month,
        exp_year,
    })
    .filter(|c| c.has_valid_expiry())
}

/// The customer, when it is a live customer of the tenant.
async fn live_customer(
    state: &AppState,
    tenant: &Tenant,
    customer_id: &str,
) -> Result<Option<CustomerId>, ApiError> {
    let Ok(id) = CustomerId::parse(customer_id) else {
        return Ok(None);
    };
    let live = CustomerListProjection::get(&state.pool, tenant, id.as_str())
        .await?
        .is_some();
    Ok(live.then_some(id))
}

async fn add(
    state: &AppState,
    metadata: &CommandMetadata,
    customer_id: &CustomerId,
    collected: CollectedPaymentMethod,
) -> Result<(), ApiError> {
    let id = PaymentMethodId::generate();
    match add_collected_payment_method(state, metadata, customer_id, id, collected).await? {
        Added::New(_) => Ok(()),
        Added::AlreadyAdded(existing) => {
            finish_earlier_add(state, metadata, customer_id, existing.as_str()).await
        }
    }
}

/// The provider's payment method was added by an earlier delivery (or one racing this one)
/// that was not recorded as processed: it may have stopped before the subscription moved.
async fn finish_earlier_add(
    state: &AppState,
    metadata: &CommandMetadata,
    customer_id: &CustomerId,
    payment_method_id: &str,
) -> Result<(), ApiError> {
    let id = PaymentMethodId::parse(payment_method_id)
        .map_err(|e| ApiError::internal("Internal server error", e))?;
    make_default(
        state,
        metadata,
        &metadata.principal.tenant,
        customer_id,
        &id,
    )
    .await
}

/// The signature schemes of the webhook endpoints, for the API description.
pub struct WebhookSignatures;

impl Modify for WebhookSignatures {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "stripe_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                stripe_webhook::SIGNATURE_HEADER,
                "HMAC-SHA256 of the timestamp and body with the merchant's Stripe endpoint secret",
            ))),
        );
        components.add_security_scheme(
            "standard_webhooks_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                providers::standard_webhooks::SIGNATURE_HEADER,
                "Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature, \
                 keyed with the merchant's Dodo endpoint secret",
            ))),
        );
    }
}
