//! Subscriptions: a customer on a plan, charged to one of its payment methods.
//! `POST /v1/subscriptions`, `GET /v1/subscriptions/{id}`, `POST /v1/subscriptions/{id}/cancel`.

use app::billing_cycle::period_invoice_id;
use app::subscriptions::{NewSubscription, NOT_FOUND};
use app::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::subscription::Subscription;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody};
use crate::openapi::formats;
use crate::responses::ErrorBody;

/// A subscription as every endpoint shows it, with the plan it was started on.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionBody {
    #[schema(example = "sub_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    pub customer_id: String,
    pub plan_id: String,
    pub price_id: String,
    #[schema(example = "Pro")]
    pub plan_name: String,
    #[schema(value_type = formats::SubscriptionStatus)]
    pub status: String,
    pub payment_method_id: Option<String>,
    /// Set while `past_due`: when the customer loses the subscription unless a payment succeeds.
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub start_timestamp: DateTime<Utc>,
    pub canceled_at: Option<DateTime<Utc>>,
    #[schema(example = "USD")]
    pub currency: String,
    /// The plan's pricing as it was when the subscription started.
    #[schema(value_type = Object)]
    pub pricing_data: Value,
    /// Seats, for per-seat prices.
    pub quantity: i64,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Set to end when the current period ends (and not renew).
    pub cancel_at_period_end: bool,
    /// The invoice of its latest period, once there is one.
    pub latest_invoice_id: Option<String>,
}

impl SubscriptionBody {
    /// The subscription as a command left it; `None` for one never started.
    fn from_aggregate(subscription: Subscription) -> Option<Self> {
        let latest_invoice_id = subscription
            .id
            .as_ref()
            .zip(subscription.current_period_start)
            .filter(|_| {
                subscription
                    .trial_ends_at
                    .is_none_or(|end| subscription.current_period_start >= Some(end))
            })
            .map(|(id, start)| period_invoice_id(id, start).to_string());
        let plan = subscription.plan?;
        Some(Self {
            id: subscription.id?.to_string(),
            customer_id: subscription.customer_id?.to_string(),
            plan_id: plan.plan_id.to_string(),
            price_id: plan.price_id.to_string(),
            plan_name: plan.name,
            status: subscription.status?.as_str().to_owned(),
            payment_method_id: subscription.payment_method_id.map(|id| id.to_string()),
            grace_period_ends_at: subscription.grace_period_ends_at,
            start_timestamp: subscription.started_at?,
            canceled_at: subscription.canceled_at,
            currency: plan.currency.to_string(),
            pricing_data: plan.pricing_data,
            quantity: i64::from(subscription.quantity.max(1)),
            current_period_start: subscription.current_period_start,
            current_period_end: subscription.current_period_end,
            trial_ends_at: subscription.trial_ends_at,
            cancel_at_period_end: subscription.cancel_at_period_end,
            latest_invoice_id,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionEnvelope {
    pub subscription: SubscriptionBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
    /// A live customer of the merchant.
    #[schema(value_type = formats::CustomerId, required = true)]
    pub customer_id: Option<String>,
    /// One of the merchant's plans.
    #[schema(value_type = formats::PlanId, required = true)]
    pub plan_id: Option<String>,
    /// One of the customer's payment methods, charged for the subscription.
    #[schema(value_type = Option<formats::PaymentMethodId>)]
    pub payment_method_id: Option<String>,
    /// Seats, for per-seat prices: 1 to 10000, 1 when not given.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: Option<i64>,
}

fn answer(subscription: Subscription) -> Result<Json<SubscriptionEnvelope>, ApiError> {
    let subscription = SubscriptionBody::from_aggregate(subscription)
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(SubscriptionEnvelope { subscription }))
}

/// Start a subscription of a customer to a plan, optionally charged to one of the customer's
/// payment methods. A customer has at most one subscription that is not canceled.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body = CreateSubscriptionRequest,
    responses((status = 201, body = SubscriptionEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such customer, plan or payment method of the customer"),
        (status = 409, body = ErrorBody, description = "The customer already has a subscription that is not canceled")),
    security(("secret_key" = [])))]
pub async fn create_subscription(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<CreateSubscriptionRequest>,
) -> Result<(StatusCode, Json<SubscriptionEnvelope>), ApiError> {
    let new = NewSubscription {
        customer_id: body.customer_id,
        plan_id: body.plan_id,
        payment_method_id: body.payment_method_id,
        quantity: body.quantity,
    };
    let subscription = app.start_subscription(&metadata, new).await?;
    Ok((StatusCode::CREATED, answer(subscription)?))
}

/// Get a subscription by its ID.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = formats::SubscriptionId, Path, description = "Subscription ID")),
    responses((status = 200, body = SubscriptionEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn get_subscription(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionEnvelope>, ApiError> {
    answer(app.subscription(&principal, &id).await?)
}

/// A cancel's body may be empty or `{}` (cancel now), or `{"atPeriodEnd": true}` (cancel when
/// the current period ends); like every POST body it must be JSON of at most 1 MiB naming no
/// unknown field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelSubscriptionRequest {
    /// Cancel when the current period ends instead of now.
    pub at_period_end: Option<bool>,
}

/// Cancel a subscription at once; its payment method is free to be removed afterwards.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancel", tag = "subscriptions",
    request_body(content = CancelSubscriptionRequest, description = "None, or `{}`"),
    params(("id" = formats::SubscriptionId, Path, description = "Subscription ID")),
    responses((status = 200, body = SubscriptionEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The subscription is canceled already")),
    security(("secret_key" = [])))]
pub async fn cancel_subscription(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CancelSubscriptionRequest>,
) -> Result<Json<SubscriptionEnvelope>, ApiError> {
    if body.at_period_end == Some(true) {
        return answer(
            app.cancel_subscription_at_period_end(&metadata, &id)
                .await?,
        );
    }
    answer(app.cancel_subscription(&metadata, &id).await?)
}
