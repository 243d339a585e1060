//! The customer-portal endpoints of the seed. A secret key names the customer by the
//! merchant's `externalCustomerId`; a portal session token is its customer's already.

use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use domain::id::{PaymentMethodId, SubscriptionId};
use domain::payment_method::PaymentMethodCommand;
use projections::portal_overview::{PortalLookup, PortalOverview, PortalOverviewProjection};
use projections::subscription_list::SubscriptionListProjection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::commands::CommandMetadata;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};
use crate::payment_methods::{
    customers_payment_method, payment_method_error, PAYMENT_METHOD_NOT_FOUND,
};
use crate::portal_access::{portal_customer, requested, session_owns, Requested};
use crate::routes::customers::NOT_FOUND;
use crate::routes::Success;
use crate::state::AppState;
use crate::subscription_moves::{move_subscription, NO_ACTIVE_SUBSCRIPTION};

/// How long a portal read waits for its projection to apply writes that committed before it.
/// Past this the read answers what the projection holds, and says so in the log.
const FRESHNESS_WAIT: Duration = Duration::from_secs(10);

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
    responses((status = 200, body = PortalEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(query): QueryParams<PortalQuery>,
) -> Result<Json<PortalEnvelope>, ApiError> {
    let lookup = match requested(&principal, query.external_customer_id.as_deref())? {
        Requested::Own(id) => PortalLookup::Id(id),
        Requested::External(external_id) => PortalLookup::ExternalId(external_id),
    };
    // One indexed read, repeated only while the projection has yet to apply writes of this
    // tenant that committed before the request: a write acknowledged to the caller shows here.
    let tenant = principal.tenant.key();
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let portal = loop {
        let read = PortalOverviewProjection::read(&state.pool, &tenant, &lookup).await?;
        if !read.behind {
            break read.overview;
        }
        if started.elapsed() > FRESHNESS_WAIT {
            tracing::warn!("portal_overview is behind the log; answering what it holds");
            break read.overview;
        }
        state.portal.nudge();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let portal = portal.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
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
    responses((status = 200, body = crate::routes::Success), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn set_subscription_payment_method(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    JsonBody(request): JsonBody<SetSubscriptionPaymentMethodRequest>,
) -> Result<Json<Success>, ApiError> {
    let principal = &metadata.principal;
    let customer =
        portal_customer(&state, principal, request.external_customer_id.as_deref()).await?;
    let payment_method_id = request
        .payment_method_id
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("paymentMethodId is required"))?;
    let method =
        customers_payment_method(&state, &principal.tenant, &customer.id, payment_method_id)
            .await?;
    let live = SubscriptionListProjection::live_for_customer(
        &state.pool,
        &principal.tenant.key(),
        &customer.id,
    )
    .await?
    .ok_or_else(|| ApiError::conflict(NO_ACTIVE_SUBSCRIPTION))?;
    let subscription_id = SubscriptionId::parse(&live.id)
        .map_err(|e| ApiError::internal("Failed to update subscription", e))?;
    let payment_method_id = method
        .id
        .ok_or_else(|| ApiError::not_found(PAYMENT_METHOD_NOT_FOUND))?;
    move_subscription(&state, &metadata, &subscription_id, &payment_method_id).await?;
    Ok(Json(Success { success: true }))
}

/// Soft-deletes a payment method. A secret key reaches any of the tenant's; a portal session
/// only its own customer's. One an active subscription is charged to is refused (409).
#[utoipa::path(delete, path = "/v1/customers/portal/payment-methods/{id}", tag = "portal",
    params(("id" = String, Path, description = "Payment method ID")),
    responses((status = 200, body = crate::routes::Success), (status = 404, body = crate::routes::ErrorBody),
        (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn remove_payment_method(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    Path(id): Path<String>,
) -> Result<Json<Success>, ApiError> {
    let principal = &metadata.principal;
    let not_found = || ApiError::not_found(PAYMENT_METHOD_NOT_FOUND);
    let id = PaymentMethodId::parse(&id).map_err(|_| not_found())?;
    let method = state
        .payment_methods
        .current(id.as_str())
        .await
        .map_err(payment_method_error)?;
    let reachable = method.tenant.as_ref() == Some(&principal.tenant)
        && method
            .customer_id
            .as_ref()
            .is_some_and(|customer| session_owns(principal, customer.as_str()));
    if !reachable {
        return Err(not_found());
    }
    let command = PaymentMethodCommand::RemovePaymentMethod {
        tenant: principal.tenant.clone(),
    };
    state
        .payment_methods
        .execute(id.as_str(), command, &metadata)
        .await
        .map_err(payment_method_error)?;
    Ok(Json(Success { success: true }))
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
    responses((status = 200, body = SubscriptionStatusBody), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn subscription_status(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(query): QueryParams<PortalQuery>,
) -> Result<Json<SubscriptionStatusBody>, ApiError> {
    let customer =
        portal_customer(&state, &principal, query.external_customer_id.as_deref()).await?;
    let live = SubscriptionListProjection::live_for_customer(
        &state.pool,
        &principal.tenant.key(),
        &customer.id,
    )
    .await?;
    let subscription = match live {
        None => None,
        Some(live) => {
            let current = state
                .subscriptions
                .current(&live.id)
                .await
                .map_err(|e| ApiError::internal("Failed to read subscription", e))?;
            current.plan.map(|plan| StatusSubscription {
                id: live.id,
                plan_id: plan.plan_id.to_string(),
                plan_name: plan.name,
                plan_description: plan.description,
                price_id: plan.price_id.to_string(),
                currency: plan.currency.as_str().to_owned(),
                pricing_data: plan.pricing_data,
                start_timestamp: current.started_at,
            })
        }
    };
    Ok(Json(SubscriptionStatusBody {
        has_active_subscription: subscription.is_some(),
        customer: StatusCustomer {
            id: customer.id,
            name: customer.name,
            email: customer.email,
        },
        subscription,
    }))
}
