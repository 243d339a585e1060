//! Top-ups: credits a merchant offers for sale (`POST/GET /v1/credits/top-ups`), and their
//! purchase from the portal (`POST /v1/customers/portal/credits/purchase`).

use app::top_ups::{NewTopUp, PurchaseOutcome};
use app::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::top_up::TopUpPurchase;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody, QueryParams};
use crate::pagination::page_limit;
use crate::responses::{ErrorBody, TopUpBody};

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopUpEnvelope {
    pub top_up: TopUpBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopUpListEnvelope {
    pub top_ups: Vec<TopUpBody>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpRequest {
    #[schema(required = true, example = "api_calls")]
    pub feature_slug: Option<String>,
    #[schema(required = true, example = "1,000 API calls", max_length = 200)]
    pub name: Option<String>,
    #[schema(required = true, minimum = 1, maximum = 1000000000_i64)]
    pub credits_per_unit: Option<i64>,
    #[schema(required = true, minimum = 1, maximum = 1000000000000_i64)]
    pub unit_amount_cents: Option<i64>,
    /// ISO 4217; the currency of every plan it names.
    #[schema(required = true, example = "USD")]
    pub currency: Option<String>,
    /// The plans it is offered on; none: every plan in its currency.
    pub plan_ids: Option<Vec<String>>,
    /// The bought credits expire this many days after the purchase; never when not given.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_after_days: Option<i64>,
    /// The most units one purchase buys; 100 when not given.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_quantity: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopUpsQuery {
    /// Page size, 1 to 1000. Without it the whole list is returned.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return top-ups after this top-up id (keyset pagination).
    pub starting_after: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurchaseRequest {
    #[schema(required = true, example = "tu_0190…")]
    pub top_up_id: Option<String>,
    /// Units to buy, from 1 to the top-up's `maxQuantity`.
    #[schema(required = true, minimum = 1, maximum = 10000)]
    pub quantity: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurchaseQuery {
    /// The merchant's own id of the customer: required with a secret key; a portal session
    /// may leave it out, or must name its own customer.
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseBody {
    /// `paid` (invoice paid, credits granted) or `pending` (the provider settles it later;
    /// its webhook then makes the invoice and the grant).
    pub status: String,
    pub payment_id: String,
    pub top_up_id: String,
    pub feature_slug: String,
    pub quantity: i64,
    pub credits: i64,
    pub amount_cents: i64,
    pub invoice_id: Option<String>,
    pub grant_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl PurchaseBody {
    fn new(status: &str, payment_id: String, purchase: TopUpPurchase) -> Self {
        let paid = status == "paid";
        Self {
            status: status.to_owned(),
            payment_id,
            amount_cents: purchase.amount_cents(),
            top_up_id: purchase.top_up_id.to_string(),
            feature_slug: purchase.feature_slug.to_string(),
            quantity: purchase.quantity,
            credits: purchase.credits,
            invoice_id: paid.then(|| purchase.invoice_id.to_string()),
            grant_id: paid.then(|| purchase.grant_id.to_string()),
            expires_at: purchase.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseEnvelope {
    pub purchase: PurchaseBody,
}

/// Offer credits for sale to the merchant's customers.
#[utoipa::path(post, path = "/v1/credits/top-ups", tag = "credits", request_body = TopUpRequest,
    responses((status = 201, body = TopUpEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_top_up(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<TopUpRequest>,
) -> Result<(StatusCode, Json<TopUpEnvelope>), ApiError> {
    let top_up = app
        .create_top_up(
            &metadata,
            NewTopUp {
                feature_slug: body.feature_slug,
                name: body.name,
                credits_per_unit: body.credits_per_unit,
                unit_amount_cents: body.unit_amount_cents,
                currency: body.currency,
                plan_ids: body.plan_ids,
                expires_after_days: body.expires_after_days,
                max_quantity: body.max_quantity,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TopUpEnvelope {
            top_up: top_up.into(),
        }),
    ))
}

/// The merchant's top-ups, oldest first.
#[utoipa::path(get, path = "/v1/credits/top-ups", tag = "credits", params(TopUpsQuery),
    responses((status = 200, body = TopUpListEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_top_ups(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<TopUpsQuery>,
) -> Result<Json<TopUpListEnvelope>, ApiError> {
    let limit = page_limit(query.limit)?;
    let (top_ups, has_more) = app
        .list_top_ups(&principal, limit, query.starting_after.as_deref())
        .await?;
    Ok(Json(TopUpListEnvelope {
        top_ups: top_ups.into_iter().map(TopUpBody::from).collect(),
        has_more,
    }))
}

/// Buy credits: charges the customer's default payment method now. Only a succeeded charge
/// makes the paid invoice (one line), the payment and the grant (source `topup`). Send an
/// `Idempotency-Key`: a double click is then one purchase.
#[utoipa::path(post, path = "/v1/customers/portal/credits/purchase", tag = "portal",
    params(PurchaseQuery), request_body = PurchaseRequest,
    responses((status = 201, body = PurchaseEnvelope, description = "Paid: the credits are granted"),
        (status = 202, body = PurchaseEnvelope, description = "The provider settles the charge later"),
        (status = 400, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "The card was declined: a failed payment, no credits"),
        (status = 404, body = ErrorBody, description = "No such customer, or no such top-up offered on its plan"),
        (status = 409, body = ErrorBody, description = "No payment method on file")),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn purchase_top_up(
    State(app): State<App>,
    Actor(metadata): Actor,
    QueryParams(query): QueryParams<PurchaseQuery>,
    JsonBody(body): JsonBody<PurchaseRequest>,
) -> Result<(StatusCode, Json<PurchaseEnvelope>), ApiError> {
    let customer = app
        .portal_customer(&metadata.principal, query.external_customer_id.as_deref())
        .await?;
    let outcome = app
        .purchase_top_up(
            &metadata,
            &customer.id,
            body.top_up_id.as_deref(),
            body.quantity,
        )
        .await?;
    let (status, purchase) = match outcome {
        PurchaseOutcome::Paid {
            payment_id,
            purchase,
        } => (
            StatusCode::CREATED,
            PurchaseBody::new("paid", payment_id.to_string(), purchase),
        ),
        PurchaseOutcome::Pending {
            payment_id,
            purchase,
        } => (
            StatusCode::ACCEPTED,
            PurchaseBody::new("pending", payment_id.to_string(), purchase),
        ),
    };
    Ok((status, Json(PurchaseEnvelope { purchase })))
}
