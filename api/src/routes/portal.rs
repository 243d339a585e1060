//! The customer-portal endpoints of the seed. A secret key names the customer by the
//! merchant's `externalCustomerId`; a portal session token is its customer's already.

use app::App;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use projections::read_models::portal_overview::PortalOverview;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody, QueryParams};
use crate::responses::Success;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalQuery {
    /// The merchant's own id of the customer.
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalEnvelope {
    #[schema(value_type = Object)]
    pub portal: PortalOverview,
}

#[utoipa::path(get, path = "/v1/customers/portal/overview", tag = "portal", params(PortalQuery),
    responses((status = 200, body = PortalEnvelope), (status = 400, body = crate::responses::ErrorBody),
        (status = 404, body = crate::responses::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn overview(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<PortalQuery>,
) -> Result<Json<PortalEnvelope>, ApiError> {
    let portal = app
        .portal_overview(&principal, query.external_customer_id.as_deref())
        .await?;
    Ok(Json(PortalEnvelope { portal }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetSubscriptionPaymentMethodRequest {
    pub external_customer_id: Option<String>,
    pub payment_method_id: Option<String>,
}

/// Links one of the customer's payment methods to its active subscription: the subscription
/// is charged to it from now on, and the method it replaces is free to be removed.
#[utoipa::path(post, path = "/v1/customers/portal/set-subscription-payment-method", tag = "portal",
    request_body = SetSubscriptionPaymentMethodRequest,
    responses((status = 200, body = crate::responses::Success), (status = 400, body = crate::responses::ErrorBody),
        (status = 404, body = crate::responses::ErrorBody), (status = 409, body = crate::responses::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn set_subscription_payment_method(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(request): JsonBody<SetSubscriptionPaymentMethodRequest>,
) -> Result<Json<Success>, ApiError> {
    app.set_portal_subscription_payment_method(
        &metadata,
        request.external_customer_id.as_deref(),
        request.payment_method_id.as_deref(),
    )
    .await?;
    Ok(Success::yes())
}

/// Soft-deletes a payment method. A secret key reaches any of the tenant's; a portal session
/// only its own customer's. One an active subscription is charged to is refused (409).
#[utoipa::path(delete, path = "/v1/customers/portal/payment-methods/{id}", tag = "portal",
    params(("id" = String, Path, description = "Payment method ID")),
    responses((status = 200, body = crate::responses::Success), (status = 404, body = crate::responses::ErrorBody),
        (status = 409, body = crate::responses::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn remove_payment_method(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
) -> Result<Json<Success>, ApiError> {
    app.remove_payment_method(&metadata, &id).await?;
    Ok(Success::yes())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusSubscription {
    pub id: String,
    pub plan_id: String,
    pub plan_name: String,
    pub plan_description: Option<String>,
    pub price_id: String,
    pub currency: String,
    #[schema(value_type = Object)]
    pub pricing_data: serde_json::Value,
    pub start_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatusBody {
    pub has_active_subscription: bool,
    pub customer: StatusCustomer,
    pub subscription: Option<StatusSubscription>,
}

/// Whether the customer has an active subscription (past due counts: the customer keeps it
/// through the grace period), with the plan it is on.
#[utoipa::path(get, path = "/v1/customers/subscription-status", tag = "portal", params(PortalQuery),
    responses((status = 200, body = SubscriptionStatusBody), (status = 400, body = crate::responses::ErrorBody),
        (status = 404, body = crate::responses::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn subscription_status(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<PortalQuery>,
) -> Result<Json<SubscriptionStatusBody>, ApiError> {
    let (customer, subscription) = app
        .subscription_status(&principal, query.external_customer_id.as_deref())
        .await?;
    let subscription = subscription.map(|active| StatusSubscription {
        id: active.id,
        plan_id: active.plan.plan_id.to_string(),
        plan_name: active.plan.name,
        plan_description: active.plan.description,
        price_id: active.plan.price_id.to_string(),
        currency: active.plan.currency.as_str().to_owned(),
        pricing_data: active.plan.pricing_data,
        start_timestamp: active.started_at,
    });
    Ok(Json(SubscriptionStatusBody {
        has_active_subscription: subscription.is_some(),
        customer: StatusCustomer {
            id: customer.id.to_string(),
            name: customer.name,
            email: customer.email,
        },
        subscription,
    }))
}
