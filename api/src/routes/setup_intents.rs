//! `POST /v1/customers/portal/create-setup-intent`: the start of adding a payment method, in
//! the merchant's provider's way. The sandbox answers an intent billstream confirms itself
//! (`POST /v1/customers/portal/setup-intents/{intentId}/confirm` with the card); Stripe a
//! SetupIntent for Stripe.js, whose card arrives by webhook; Dodo a hosted payment link, whose
//! mandate arrives by webhook (see `webhooks.rs`).

use axum::extract::{Path, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::{Card, PaymentMethod};
use domain::provider::Provider;
use domain::tenant::Tenant;
use projections::customer_list::{CustomerListProjection, CustomerListView};
use projections::subscription_list::SubscriptionListProjection;
use providers::dodo::PaymentMethodUpdate;
use providers::{SandboxCard, SandboxCardError, StripeClient, StripeError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::commands::CommandMetadata;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::payment_providers::{provider_failed, require_mode, MerchantProvider};
use crate::portal_access::{portal_customer, session_owns};
use crate::provider_ids;
use crate::provider_payment_methods::{
    add_collected_payment_method, make_default, Added, CollectedPaymentMethod,
};
use crate::routes::customers::NOT_FOUND;
use crate::state::AppState;

/// The seed's refusal when a Dodo customer has no subscription to carry a mandate.
pub const DODO_NEEDS_SUBSCRIPTION: &str = "Active subscription required to add mandate for Dodo";

const INTENT_NOT_FOUND: &str = "Setup intent not found";
const ALREADY_CONFIRMED: &str = "Setup intent has already been confirmed";

/// Metadata keys on the provider's objects that lead a webhook back to ours.
pub const CUSTOMER_METADATA: &str = "billstream_customer_id";
pub const TENANT_METADATA: &str = "billstream_tenant";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSetupIntentRequest {
    /// The merchant's id of the customer; a portal session may leave it out.
    pub external_customer_id: Option<String>,
}

/// The seed's answer: the provider's name and, under it, what the browser needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupIntentResponse {
    /// `sandbox`, `stripe` or `dodo`.
    pub provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxIntent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeIntent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dodo: Option<DodoLink>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxIntent {
    pub intent_id: String,
    /// POST the card here, with the same credentials.
    pub confirm_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeIntent {
    pub client_secret: String,
    pub intent_id: String,
    pub publishable_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DodoLink {
    pub payment_link: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfirmSetupIntentRequest {
    /// Spaces are allowed: `4242 4242 4242 4242`.
    pub card_number: Option<String>,
    pub exp_month: Option<i64>,
    /// Four digits, or two for this century.
    pub exp_year: Option<i64>,
}

/// A payment method as the portal shows it (the seed's `paymentMethods` item).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodBody {
    pub id: String,
    pub provider: String,
    pub payment_type: String,
    /// `active`: a removed payment method is not shown.
    pub status: &'static str,
    pub card_brand: Option<String>,
    pub card_last_four: Option<String>,
    pub card_expiry_month: Option<u32>,
    pub card_expiry_year: Option<i32>,
    pub linked_to_subscription: bool,
    pub created_at: Option<DateTime<Utc>>,
}

impl PaymentMethodBody {
    fn from_aggregate(method: &PaymentMethod) -> Option<Self> {
        Some(Self {
            id: method.id.as_ref()?.to_string(),
            provider: method.provider?.as_str().to_owned(),
            payment_type: method.payment_type.clone()?,
            status: "active",
            card_brand: method.card.as_ref().map(|c| c.brand.clone()),
            card_last_four: method.card.as_ref().map(|c| c.last_four.clone()),
            card_expiry_month: method.card.as_ref().map(|c| c.exp_month),
            card_expiry_year: method.card.as_ref().map(|c| c.exp_year),
            linked_to_subscription: method.is_linked(),
            created_at: method.added_at,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodEnvelope {
    pub payment_method: PaymentMethodBody,
}

/// Creates a Stripe Setup Intent, a Dodo payment link, or a sandbox intent, by the merchant's
/// provider, to add a payment method.
#[utoipa::path(post, path = "/v1/customers/portal/create-setup-intent", tag = "portal",
    request_body = CreateSetupIntentRequest,
    responses((status = 200, body = SetupIntentResponse), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody),
        (status = 502, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_setup_intent(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateSetupIntentRequest>,
) -> Result<Json<SetupIntentResponse>, ApiError> {
    let principal = &metadata.principal;
    let customer =
        portal_customer(&state, principal, request.external_customer_id.as_deref()).await?;
    let merchant = MerchantProvider::load(&state.pool, &principal.tenant.merchant_id)
        .await?
        .ok_or_else(|| ApiError::internal("Internal server error", "the key's merchant is gone"))?;
    let tenant = &principal.tenant;
    let response = match merchant.provider {
        Provider::Sandbox => SetupIntentResponse {
            provider: Provider::Sandbox.as_str(),
            sandbox: Some(sandbox_intent(&state, tenant, &customer, &headers).await?),
            stripe: None,
            dodo: None,
        },
        Provider::Stripe => SetupIntentResponse {
            provider: Provider::Stripe.as_str(),
            stripe: Some(stripe_intent(&state, &merchant, tenant, &customer).await?),
            sandbox: None,
            dodo: None,
        },
        Provider::Dodo => SetupIntentResponse {
            provider: Provider::Dodo.as_str(),
            dodo: Some(dodo_link(&state, &merchant, tenant, &customer).await?),
            sandbox: None,
            stripe: None,
        },
    };
    Ok(Json(response))
}

/// A sandbox intent, with the payment method id it will add chosen now: however often it is
/// confirmed, it adds that one method at most.
async fn sandbox_intent(
    state: &AppState,
    tenant: &Tenant,
    customer: &CustomerListView,
    headers: &HeaderMap,
) -> Result<SandboxIntent, ApiError> {
    let intent_id = format!("seti_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(
        "INSERT INTO sandbox_setup_intents (id, tenant, customer_id, status, payment_method_id) \
         VALUES ($1, $2, $3, 'requires_payment_method', $4)",
    )
    .bind(&intent_id)
    .bind(tenant.key())
    .bind(&customer.id)
    .bind(PaymentMethodId::generate().as_str())
    .execute(&state.pool)
    .await?;
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    Ok(SandboxIntent {
        confirm_url: format!("http://{host}/v1/customers/portal/setup-intents/{intent_id}/confirm"),
        intent_id,
    })
}

async fn stripe_intent(
    state: &AppState,
    merchant: &MerchantProvider,
    tenant: &Tenant,
    customer: &CustomerListView,
) -> Result<StripeIntent, ApiError> {
    let account = merchant.stripe_account()?;
    require_mode("Stripe", account.mode(), tenant.mode)?;
    let client = account.client();
    let tenant_key = tenant.key();
    let metadata = [
        (CUSTOMER_METADATA, customer.id.as_str()),
        (TENANT_METADATA, tenant_key.as_str()),
    ];
    let existing = stripe_customer(state, &client, tenant, customer, false).await?;
    let intent = match client.create_setup_intent(&existing, &metadata, None).await {
        Err(StripeError::Api {
            code: Some(code),
            param: Some(param),
            ..
        }) if code == "resource_missing" && param == "customer" => {
            // The merchant deleted the customer in Stripe's dashboard: make a new one.
            let fresh = stripe_customer(state, &client, tenant, customer, true).await?;
            client.create_setup_intent(&fresh, &metadata, None).await
        }
        other => other,
    }
    .map_err(|e| provider_failed("Stripe", "create the setup intent", e))?;
    Ok(StripeIntent {
        client_secret: intent.client_secret,
        intent_id: intent.id,
        publishable_key: account.publishable_key.clone(),
    })
}

/// The customer's Stripe customer, made the first time. Concurrent first requests send the
/// same idempotency key, so Stripe makes one customer for them all. `fresh` makes a new one in
/// place of a customer Stripe no longer has.
async fn stripe_customer(
    state: &AppState,
    client: &StripeClient,
    tenant: &Tenant,
    customer: &CustomerListView,
    fresh: bool,
) -> Result<String, ApiError> {
    let provider = Provider::Stripe.as_str();
    if !fresh {
        if let Some(id) =
            provider_ids::provider_customer(&state.pool, tenant, &customer.id, provider).await?
        {
            return Ok(id);
        }
    }
    let tenant_key = tenant.key();
    let idempotency_key = (!fresh).then(|| format!("billstream-customer-{}", customer.id));
    let created = client
        .create_customer(
            &customer.email,
            customer.name.as_deref(),
            &[
                (CUSTOMER_METADATA, customer.id.as_str()),
                (TENANT_METADATA, tenant_key.as_str()),
            ],
            idempotency_key.as_deref(),
        )
        .await
        .map_err(|e| provider_failed("Stripe", "create the customer", e))?;
    Ok(provider_ids::remember_provider_customer(
        &state.pool,
        tenant,
        &customer.id,
        provider,
        &created.id,
        fresh,
    )
    .await?)
}

/// Dodo changes the payment method of an existing subscription through a hosted page. Which
/// Dodo subscription stands behind a billstream subscription is learnt from Dodo's
/// `subscription.active` (or `.updated`) webhook, whose metadata `billstream_subscription_id`
/// the merchant set in the Dodo checkout (see `webhooks.rs`).
async fn dodo_link(
    state: &AppState,
    merchant: &MerchantProvider,
    tenant: &Tenant,
    customer: &CustomerListView,
) -> Result<DodoLink, ApiError> {
    let account = merchant.dodo_account()?;
    require_mode("Dodo", Some(account.mode), tenant.mode)?;
    let live =
        SubscriptionListProjection::live_for_customer(&state.pool, &tenant.key(), &customer.id)
            .await?
            .ok_or_else(|| ApiError::conflict(DODO_NEEDS_SUBSCRIPTION))?;
    let dodo_subscription =
        provider_ids::provider_subscription(&state.pool, tenant, &live.id, Provider::Dodo.as_str())
            .await?
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "Subscription {} has no Dodo subscription yet: Dodo links it when the \
                     checkout's metadata names billstream_subscription_id",
                    live.id
                ))
            })?;
    let link = account
        .client()
        .update_subscription_payment_method(
            &dodo_subscription,
            &PaymentMethodUpdate::New { return_url: None },
        )
        .await
        .map_err(|e| provider_failed("Dodo", "create the payment link", e))?;
    let payment_link = link.payment_link.ok_or_else(|| {
        provider_failed("Dodo", "create the payment link", "the answer had no link")
    })?;
    Ok(DodoLink { payment_link })
}

/// Completes a sandbox setup intent with a card: the card is checked as a provider would, and
/// added to the intent's customer as its default payment method.
#[utoipa::path(post, path = "/v1/customers/portal/setup-intents/{intentId}/confirm", tag = "portal",
    params(("intentId" = String, Path, description = "The sandbox setup intent")),
    request_body = ConfirmSetupIntentRequest,
    responses((status = 201, body = PaymentMethodEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 402, body = crate::routes::ErrorBody), (status = 404, body = crate::routes::ErrorBody),
        (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn confirm_setup_intent(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    Path(intent_id): Path<String>,
    JsonBody(request): JsonBody<ConfirmSetupIntentRequest>,
) -> Result<(StatusCode, Json<PaymentMethodEnvelope>), ApiError> {
    let (card_number, exp_month, exp_year) = card_fields(&request)?;
    let principal = &metadata.principal;
    let intent: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT tenant, customer_id, status, payment_method_id FROM sandbox_setup_intents \
         WHERE id = $1",
    )
    .bind(&intent_id)
    .fetch_optional(&state.pool)
    .await?;
    let (customer_id, status, payment_method_id) = match intent {
        Some((tenant, customer_id, status, payment_method_id))
            if tenant == principal.tenant.key() && session_owns(principal, &customer_id) =>
        {
            (customer_id, status, payment_method_id)
        }
        // Another tenant's intent, or another customer's for a session: not theirs to know of.
        _ => return Err(ApiError::not_found(INTENT_NOT_FOUND)),
    };
    if status == "succeeded" {
        return Err(ApiError::conflict(ALREADY_CONFIRMED));
    }
    CustomerListProjection::get(&state.pool, &principal.tenant, &customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let card =
        SandboxCard::parse(card_number, exp_month, exp_year, Utc::now()).map_err(card_error)?;

    // Claim the intent: of racing confirms exactly one moves it on, the others are refused.
    // Nothing is held while the card is added, so racers cannot starve the pool. Should this
    // process die before the card is added, the intent stays used up and the customer makes
    // another; its payment method id, fixed at creation, could never be added twice anyway.
    let claimed = sqlx::query(
        "UPDATE sandbox_setup_intents SET status = 'succeeded', confirmed_at = now() \
         WHERE id = $1 AND status = 'requires_payment_method'",
    )
    .bind(&intent_id)
    .execute(&state.pool)
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        return Err(ApiError::conflict(ALREADY_CONFIRMED));
    }

    let internal = |e: domain::id::InvalidId| ApiError::internal("Internal server error", e);
    let customer_id = CustomerId::parse(&customer_id).map_err(internal)?;
    let payment_method_id = PaymentMethodId::parse(&payment_method_id).map_err(internal)?;
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
    let added = add_collected_payment_method(
        &state,
        &metadata,
        &customer_id,
        payment_method_id,
        collected,
    )
    .await;
    let method = match added {
        Ok(Added::New(method)) => *method,
        // An earlier confirm added the card, then failed (moving the subscription) and gave
        // the intent back: finish its work rather than add another card.
        Ok(Added::AlreadyAdded(id)) => {
            make_default(&state, &metadata, &principal.tenant, &customer_id, &id).await?;
            state
                .payment_methods
                .current(id.as_str())
                .await
                .map_err(|e| ApiError::internal("Failed to add payment method", e))?
        }
        Err(error) => {
            // Give the intent back, so the customer can try again.
            sqlx::query(
                "UPDATE sandbox_setup_intents \
                 SET status = 'requires_payment_method', confirmed_at = NULL WHERE id = $1",
            )
            .bind(&intent_id)
            .execute(&state.pool)
            .await?;
            return Err(error);
        }
    };
    let payment_method = PaymentMethodBody::from_aggregate(&method)
        .ok_or_else(|| ApiError::internal("Internal server error", "added method not found"))?;
    Ok((
        StatusCode::CREATED,
        Json(PaymentMethodEnvelope { payment_method }),
    ))
}

/// The card fields, present and in range for the card check; refusals are the 400s a
/// provider's card form would show.
fn card_fields(request: &ConfirmSetupIntentRequest) -> Result<(&str, u32, i32), ApiError> {
    let number = request
        .card_number
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("cardNumber is required"))?;
    let month = request
        .exp_month
        .ok_or_else(|| ApiError::bad_request("expMonth is required"))?;
    let year = request
        .exp_year
        .ok_or_else(|| ApiError::bad_request("expYear is required"))?;
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
fn card_error(error: SandboxCardError) -> ApiError {
    match error {
        SandboxCardError::InvalidNumber => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_number",
            "Your card number is invalid",
        ),
        SandboxCardError::InvalidExpiry => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
            "Your card's expiration date is invalid",
        ),
        SandboxCardError::Expired => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "expired_card",
            "Your card has expired",
        ),
        SandboxCardError::Declined => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_declined",
            "Your card was declined",
        ),
    }
}
