//! Subscriptions: a customer on a plan, charged to one of its payment methods.
//! `POST /v1/subscriptions`, `GET /v1/subscriptions/{id}`, `POST /v1/subscriptions/{id}/cancel`.
//!
//! A subscription and its payment method are two aggregates written one after the other, in
//! the order the PaymentMethod aggregate asks for: the method is linked before the
//! subscription points at it, and unlinked only after the subscription stopped pointing at it
//! (canceled). So a payment method an active subscription charges can never be removed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use domain::id::{CustomerId, PaymentMethodId, PlanId, SubscriptionId};
use domain::payment_method::PaymentMethodCommand;
use domain::subscription::{Subscription, SubscriptionCommand, SubscriptionError};
use projections::customer_list::CustomerListProjection;
use projections::subscription_list::SubscriptionListProjection;
use projections::{ClaimConflict, ClaimKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::commands::CommandMetadata;
use crate::customer_turns::CustomerTurn;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::payment_methods::{customers_payment_method, payment_method_error};
use crate::routes::customers::{self, NOT_FOUND as CUSTOMER_NOT_FOUND};
use crate::state::AppState;

pub(crate) const NOT_FOUND: &str = "Subscription not found";
pub(crate) const PLAN_NOT_FOUND: &str = "Plan not found";
pub(crate) const ALREADY_SUBSCRIBED: &str = "Customer already has an active subscription";
const FAILED: &str = "Failed to update subscription";

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
    /// `active`, `past_due` or `canceled`.
    #[schema(example = "active")]
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
}

impl SubscriptionBody {
    /// The subscription as a command left it; `None` for one never started.
    fn from_aggregate(subscription: Subscription) -> Option<Self> {
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
    /// Required: a live customer of the merchant.
    pub customer_id: Option<String>,
    /// Required: one of the merchant's plans.
    pub plan_id: Option<String>,
    /// One of the customer's payment methods, charged for the subscription.
    pub payment_method_id: Option<String>,
}

/// Maps a subscription command's failure. The one-live-subscription rule spans customers and
/// subscriptions, so the log refuses it at append time, as a claim.
pub(crate) fn subscription_error(error: AggregateError<SubscriptionError>) -> ApiError {
    match error {
        AggregateError::UserError(e @ SubscriptionError::NotFound) => {
            ApiError::not_found(e.to_string())
        }
        AggregateError::UserError(
            e @ (SubscriptionError::Canceled
            | SubscriptionError::AlreadyCanceled
            | SubscriptionError::AlreadyExists),
        ) => ApiError::conflict(e.to_string()),
        AggregateError::UserError(e @ SubscriptionError::GracePeriodInPast) => {
            ApiError::bad_request(e.to_string())
        }
        AggregateError::AggregateConflict => ApiError::conflict(
            "The subscription was changed by concurrent requests; retry the request",
        ),
        AggregateError::UnexpectedError(e) => match e.downcast_ref::<ClaimConflict>() {
            Some(ClaimConflict {
                kind: ClaimKind::LiveSubscription,
            }) => ApiError::conflict(ALREADY_SUBSCRIBED),
            _ => ApiError::internal(FAILED, e),
        },
        other => ApiError::internal(FAILED, other),
    }
}

fn parse_id(id: &str) -> Result<SubscriptionId, ApiError> {
    SubscriptionId::parse(id).map_err(|_| {
        ApiError::bad_request(
            "Invalid subscription ID: expected \"sub_\" followed by letters, digits or underscores",
        )
    })
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

fn answer(subscription: Subscription) -> Result<SubscriptionEnvelope, ApiError> {
    let subscription = SubscriptionBody::from_aggregate(subscription)
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(SubscriptionEnvelope { subscription })
}

/// Takes back the link made for a subscription that did not start. When it lost a race to
/// another start for the same customer and the winner charges the same payment method, our
/// link replaced the winner's: the link goes back to the winner instead of away. The caller
/// answers with the start's own error, so a failure here is logged rather than returned: it
/// leaves the method linked to nothing, which only blocks its removal.
async fn release_payment_method(
    state: &AppState,
    metadata: &CommandMetadata,
    payment_method_id: &PaymentMethodId,
    failed: &SubscriptionId,
    customer_id: &CustomerId,
) {
    let tenant = metadata.principal.tenant.clone();
    let winner = SubscriptionListProjection::live_for_customer(
        &state.pool,
        &tenant.key(),
        customer_id.as_str(),
    )
    .await;
    let command = match winner {
        Ok(Some(live)) if live.payment_method_id.as_deref() == Some(payment_method_id.as_str()) => {
            match SubscriptionId::parse(&live.id) {
                Ok(subscription_id) => PaymentMethodCommand::LinkPaymentMethod {
                    tenant,
                    subscription_id,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot restore a payment method's link");
                    return;
                }
            }
        }
        Ok(_) => PaymentMethodCommand::UnlinkPaymentMethod {
            tenant,
            subscription_id: failed.clone(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot release a payment method after a failed start");
            return;
        }
    };
    if let Err(e) = state
        .payment_methods
        .execute(payment_method_id.as_str(), command, metadata)
        .await
    {
        tracing::warn!(error = %e, "cannot release a payment method after a failed start");
    }
}

/// Cancels subscription `id` of the caller's tenant, then unlinks its payment method, and
/// returns it canceled. Canceling a canceled subscription is a 409; it still retries the
/// unlink, so that a cancel whose unlink failed heals when the caller tries again.
pub(crate) async fn cancel(
    state: &AppState,
    metadata: &CommandMetadata,
    id: &SubscriptionId,
) -> Result<Subscription, ApiError> {
    let tenant = metadata.principal.tenant.clone();
    let canceled = state
        .subscriptions
        .execute(
            id.as_str(),
            SubscriptionCommand::CancelSubscription {
                tenant: tenant.clone(),
            },
            metadata,
        )
        .await;
    let (subscription, outcome) = match canceled {
        Ok(subscription) => (subscription.clone(), Ok(subscription)),
        Err(AggregateError::UserError(SubscriptionError::AlreadyCanceled)) => {
            let subscription = state
                .subscriptions
                .current(id.as_str())
                .await
                .map_err(subscription_error)?;
            let refusal = subscription_error(AggregateError::UserError(
                SubscriptionError::AlreadyCanceled,
            ));
            (subscription, Err(refusal))
        }
        Err(e) => return Err(subscription_error(e)),
    };
    if let Some(payment_method_id) = &subscription.payment_method_id {
        state
            .payment_methods
            .execute(
                payment_method_id.as_str(),
                PaymentMethodCommand::UnlinkPaymentMethod {
                    tenant,
                    subscription_id: id.clone(),
                },
                metadata,
            )
            .await
            .map_err(payment_method_error)?;
    }
    outcome
}

/// Start a subscription of a customer to a plan, optionally charged to one of the customer's
/// payment methods. A customer has at most one subscription that is not canceled.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions",
    request_body = CreateSubscriptionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 201, body = SubscriptionEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_subscription(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    JsonBody(body): JsonBody<CreateSubscriptionRequest>,
) -> Result<(StatusCode, Json<SubscriptionEnvelope>), ApiError> {
    let tenant = metadata.principal.tenant.clone();
    let customer_id = customers::parse_id(required(&body.customer_id, "customerId")?)?;
    let plan_id = PlanId::parse(required(&body.plan_id, "planId")?).map_err(|_| {
        ApiError::bad_request(
            "Invalid plan ID: expected \"plan_\" followed by letters, digits or underscores",
        )
    })?;
    let payment_method_id = body
        .payment_method_id
        .as_deref()
        .map(|id| {
            PaymentMethodId::parse(id).map_err(|_| {
                ApiError::bad_request(
                    "Invalid payment method ID: expected \"pm_\" followed by letters, digits \
                     or underscores",
                )
            })
        })
        .transpose()?;

    // The customer's delete waits for this start, and this start for its delete.
    let turn = CustomerTurn::take(&state.turns, &tenant.key(), customer_id.as_str()).await?;
    let started = start_in_turn(&state, &metadata, customer_id, plan_id, payment_method_id).await;
    turn.end().await;
    started
}

/// Starts the subscription while no delete of its customer can run.
async fn start_in_turn(
    state: &AppState,
    metadata: &CommandMetadata,
    customer_id: CustomerId,
    plan_id: PlanId,
    payment_method_id: Option<PaymentMethodId>,
) -> Result<(StatusCode, Json<SubscriptionEnvelope>), ApiError> {
    let tenant = metadata.principal.tenant.clone();
    CustomerListProjection::get(&state.pool, &tenant, customer_id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(CUSTOMER_NOT_FOUND))?;
    let plan = state
        .plans
        .current(plan_id.as_str())
        .await
        .map_err(|e| ApiError::internal(FAILED, e))?
        .snapshot_for(&tenant)
        .ok_or_else(|| ApiError::not_found(PLAN_NOT_FOUND))?;
    if let Some(id) = &payment_method_id {
        customers_payment_method(state, &tenant, customer_id.as_str(), id.as_str()).await?;
    }
    // The log's claim decides races; asking first answers the common case without touching
    // the payment method, whose link the customer's live subscription holds.
    if SubscriptionListProjection::live_for_customer(
        &state.pool,
        &tenant.key(),
        customer_id.as_str(),
    )
    .await?
    .is_some()
    {
        return Err(ApiError::conflict(ALREADY_SUBSCRIBED));
    }

    let id = SubscriptionId::generate();
    if let Some(payment_method_id) = &payment_method_id {
        state
            .payment_methods
            .execute(
                payment_method_id.as_str(),
                PaymentMethodCommand::LinkPaymentMethod {
                    tenant: tenant.clone(),
                    subscription_id: id.clone(),
                },
                metadata,
            )
            .await
            .map_err(payment_method_error)?;
    }
    let command = SubscriptionCommand::StartSubscription {
        id: id.clone(),
        tenant: tenant.clone(),
        customer_id: customer_id.clone(),
        plan,
        payment_method_id: payment_method_id.clone(),
    };
    let started = state
        .subscriptions
        .execute_new(id.as_str(), command, metadata)
        .await;
    let subscription = match started {
        Ok(subscription) => subscription,
        Err(e) => {
            if let Some(payment_method_id) = &payment_method_id {
                release_payment_method(state, metadata, payment_method_id, &id, &customer_id).await;
            }
            return Err(subscription_error(e));
        }
    };
    Ok((StatusCode::CREATED, Json(answer(subscription)?)))
}

/// Get a subscription by its ID.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription ID")),
    responses((status = 200, body = SubscriptionEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn get_subscription(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionEnvelope>, ApiError> {
    let id = parse_id(&id)?;
    let subscription = state
        .subscriptions
        .current(id.as_str())
        .await
        .map_err(subscription_error)?;
    if subscription.tenant.as_ref() != Some(&principal.tenant) {
        return Err(ApiError::not_found(NOT_FOUND));
    }
    Ok(Json(answer(subscription)?))
}

/// Cancel a subscription at once; its payment method is free to be removed afterwards.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancel", tag = "subscriptions",
    params(("id" = String, Path, description = "Subscription ID"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = SubscriptionEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn cancel_subscription(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionEnvelope>, ApiError> {
    let id = parse_id(&id)?;
    let subscription = cancel(&state, &metadata, &id).await?;
    Ok(Json(answer(subscription)?))
}
