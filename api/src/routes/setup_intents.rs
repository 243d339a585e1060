//! `POST /v1/customers/portal/create-setup-intent`: the start of adding a payment method, in
//! the merchant's provider's way. The sandbox answers an intent billstream confirms itself
//! (`POST /v1/customers/portal/setup-intents/{intentId}/confirm` with the card); Stripe a
//! SetupIntent for Stripe.js, whose card arrives by webhook; Dodo a hosted payment link, whose
//! mandate arrives by webhook (see `webhooks.rs`).

use app::setup_intents::{CardInput, StartedSetup};
use app::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::payment_method::PaymentMethod;
use domain::provider::Provider;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Actor, JsonBody};
use crate::openapi::formats;
use crate::responses::ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSetupIntentRequest {
    /// The merchant's id of the customer: required with a secret key; a portal session may
    /// leave it out, or must name its own customer.
    #[schema(value_type = Option<formats::ExternalCustomerId>)]
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
    #[schema(value_type = formats::CardNumber, required = true)]
    pub card_number: Option<String>,
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 12)]
    pub exp_month: Option<i64>,
    /// Four digits, or two for this century; at most 50 years ahead. A past month is an
    /// expired card (402).
    #[schema(value_type = i64, required = true, minimum = 0)]
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
    responses((status = 200, body = SetupIntentResponse),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody,
            description = "The provider's account is in the other mode, or (Dodo) the customer has no active subscription linked to Dodo yet"),
        (status = 502, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn create_setup_intent(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(request): JsonBody<CreateSetupIntentRequest>,
) -> Result<Json<SetupIntentResponse>, ApiError> {
    let started = app
        .create_setup_intent(&metadata, request.external_customer_id.as_deref())
        .await?;
    let response = match started {
        StartedSetup::Sandbox { intent_id } => SetupIntentResponse {
            provider: Provider::Sandbox.as_str(),
            sandbox: Some(SandboxIntent {
                confirm_url: format!(
                    "{}/v1/customers/portal/setup-intents/{intent_id}/confirm",
                    app.public_url()
                ),
                intent_id,
            }),
            stripe: None,
            dodo: None,
        },
        StartedSetup::Stripe {
            intent_id,
            client_secret,
            publishable_key,
        } => SetupIntentResponse {
            provider: Provider::Stripe.as_str(),
            stripe: Some(StripeIntent {
                client_secret,
                intent_id,
                publishable_key,
            }),
            sandbox: None,
            dodo: None,
        },
        StartedSetup::HostedLink { provider, url } => SetupIntentResponse {
            provider: provider.as_str(),
            dodo: Some(DodoLink { payment_link: url }),
            sandbox: None,
            stripe: None,
        },
    };
    Ok(Json(response))
}

/// Completes a sandbox setup intent with a card: the card is checked as a provider would, and
/// added to the intent's customer as its default payment method.
#[utoipa::path(post, path = "/v1/customers/portal/setup-intents/{intentId}/confirm", tag = "portal",
    params(("intentId" = formats::SetupIntentId, Path, description = "The sandbox setup intent")),
    request_body = ConfirmSetupIntentRequest,
    responses((status = 201, body = PaymentMethodEnvelope),
        (status = 400, body = ErrorBody, description = "A malformed card number or expiry"),
        (status = 402, body = ErrorBody, description = "The card expired, or was declined"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The intent was confirmed already")),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn confirm_setup_intent(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(intent_id): Path<String>,
    JsonBody(request): JsonBody<ConfirmSetupIntentRequest>,
) -> Result<(StatusCode, Json<PaymentMethodEnvelope>), ApiError> {
    let card = CardInput {
        number: request.card_number,
        exp_month: request.exp_month,
        exp_year: request.exp_year,
    };
    let method = app
        .confirm_sandbox_setup_intent(&metadata, &intent_id, card)
        .await?;
    let payment_method = PaymentMethodBody::from_aggregate(&method)
        .ok_or_else(|| ApiError::internal("Internal server error", "added method not found"))?;
    Ok((
        StatusCode::CREATED,
        Json(PaymentMethodEnvelope { payment_method }),
    ))
}
