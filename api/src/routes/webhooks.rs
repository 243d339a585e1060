//! Provider webhooks: `POST /v1/webhooks/stripe/{merchantId}` and
//! `POST /v1/webhooks/dodo/{merchantId}`. No bearer key: each delivery is signed with the
//! merchant's endpoint secret, verified over the raw body before anything is read, and refused
//! (400, nothing changes) when forged or older than five minutes. Each provider event id is
//! processed once (`app::provider_events`).
//!
//! The tenant a delivery acts in: Stripe says, with `livemode`; Dodo does not, so the merchant's
//! Dodo settings name the mode its Dodo account serves. Events are recorded with the actor
//! `webhook:<provider>:<event id>`.

use app::provider_events::Received;
use app::App;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use domain::provider::Provider;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::openapi::formats;
use crate::responses::ErrorBody;

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

async fn receive(
    app: &App,
    provider: Provider,
    merchant_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<WebhookReceived>, ApiError> {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let outcome = app
        .receive_webhook(provider, merchant_id, headers, body, request_id)
        .await?;
    Ok(received(outcome == Received::Duplicate))
}

/// Stripe's webhook. On `setup_intent.succeeded` the card the customer entered in Stripe.js is
/// added to the billstream customer named in the setup intent's metadata; other events are
/// acknowledged and ignored.
#[utoipa::path(post, path = "/v1/webhooks/stripe/{merchantId}", tag = "webhooks",
    params(("merchantId" = formats::MerchantId, Path, description = "The merchant the endpoint belongs to")),
    request_body(content = Object, description = "A Stripe event, as Stripe signs it"),
    responses((status = 200, body = WebhookReceived),
        (status = 400, body = ErrorBody,
            description = "Unsigned, forged or stale (over five minutes), for an unknown merchant or one without Stripe: nothing changed"),
        (status = 409, body = ErrorBody,
            description = "A concurrent change won; the provider's retry completes the delivery"),
        (status = 502, body = ErrorBody)),
    security(("stripe_signature" = [])))]
pub async fn stripe_webhook(
    State(app): State<App>,
    Path(merchant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceived>, ApiError> {
    receive(&app, Provider::Stripe, &merchant_id, &headers, &body).await
}

/// Dodo's webhook. `subscription.active` and `subscription.updated` link the Dodo subscription
/// to the billstream subscription its metadata names, and add the payment method the Dodo
/// subscription is charged to when it is new (the customer completed the payment link);
/// other events are acknowledged and ignored.
#[utoipa::path(post, path = "/v1/webhooks/dodo/{merchantId}", tag = "webhooks",
    params(("merchantId" = formats::MerchantId, Path, description = "The merchant the endpoint belongs to")),
    request_body(content = Object, description = "A Dodo event, signed by Standard Webhooks"),
    responses((status = 200, body = WebhookReceived),
        (status = 400, body = ErrorBody,
            description = "Unsigned, forged or stale (over five minutes), for an unknown merchant or one without Dodo: nothing changed"),
        (status = 409, body = ErrorBody,
            description = "A concurrent change won; the provider's retry completes the delivery"),
        (status = 502, body = ErrorBody)),
    security(("standard_webhooks_signature" = [])))]
pub async fn dodo_webhook(
    State(app): State<App>,
    Path(merchant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceived>, ApiError> {
    receive(&app, Provider::Dodo, &merchant_id, &headers, &body).await
}
