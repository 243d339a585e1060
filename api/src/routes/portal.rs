//! The customer-portal endpoints of the seed. A secret key names the customer by the
//! merchant's `externalCustomerId`; a portal session token is its customer's already.

use app::App;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use projections::read_models::portal_overview::PortalOverview;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody, QueryParams};
use crate::openapi::formats;
use crate::pagination::page_limit;
use crate::responses::{ErrorBody, Success};
use crate::streamed_list::paged_list;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalQuery {
    /// The merchant's own id of the customer: required with a secret key; a portal session
    /// may leave it out, or must name its own customer.
    #[param(value_type = Option<formats::ExternalCustomerId>)]
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalEnvelope {
    pub portal: PortalBody,
}

/// The seed's portal overview.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalBody {
    pub customer: StatusCustomer,
    /// The customer's latest subscription, canceled or not.
    pub subscription: Option<PortalSubscription>,
    /// Payment methods not removed, oldest first.
    pub payment_methods: Vec<PortalPaymentMethod>,
    /// The latest ten invoices and adjustment documents, newest first (the rest:
    /// `GET /v1/customers/portal/invoices`).
    #[schema(value_type = Vec<Object>)]
    pub invoices: Vec<serde_json::Value>,
    /// The latest ten payments, newest first (the rest: `GET /v1/customers/portal/payments`).
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalSubscription {
    pub id: String,
    /// The seed's id that stays the same across plan changes: here, the subscription's own.
    pub stable_subscription_id: String,
    #[schema(value_type = formats::SubscriptionStatus)]
    pub status: String,
    pub plan_id: String,
    /// Set while `past_due`.
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub payment_method_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalPaymentMethod {
    pub id: String,
    #[schema(example = "sandbox")]
    pub provider: String,
    #[schema(example = "card")]
    pub payment_type: String,
    #[schema(example = "active")]
    pub status: String,
    #[schema(example = "visa")]
    pub card_brand: Option<String>,
    #[schema(example = "4242")]
    pub card_last_four: Option<String>,
    #[schema(minimum = 1, maximum = 12)]
    pub card_expiry_month: Option<u32>,
    pub card_expiry_year: Option<i32>,
    pub linked_to_subscription: bool,
}

impl From<PortalOverview> for PortalBody {
    fn from(overview: PortalOverview) -> Self {
        let customer = overview.customer;
        Self {
            customer: StatusCustomer {
                id: customer.id,
                name: customer.name,
                email: customer.email,
            },
            subscription: overview.subscription.map(|s| PortalSubscription {
                id: s.id,
                stable_subscription_id: s.stable_subscription_id,
                status: s.status.as_str().to_owned(),
                plan_id: s.plan_id,
                grace_period_ends_at: s.grace_period_ends_at,
                payment_method_id: s.payment_method_id,
            }),
            payment_methods: overview
                .payment_methods
                .into_iter()
                .map(|m| PortalPaymentMethod {
                    id: m.id,
                    provider: m.provider,
                    payment_type: m.payment_type,
                    status: m.status,
                    card_brand: m.card_brand,
                    card_last_four: m.card_last_four,
                    card_expiry_month: m.card_expiry_month,
                    card_expiry_year: m.card_expiry_year,
                    linked_to_subscription: m.linked_to_subscription,
                })
                .collect(),
            invoices: overview.invoices,
            payments: overview.payments,
        }
    }
}

/// Aggregate view of a customer's subscription, payment methods, invoices and recent
/// payments. A write answered 2xx before the request shows in it.
#[utoipa::path(get, path = "/v1/customers/portal/overview", tag = "portal", params(PortalQuery),
    responses((status = 200, body = PortalEnvelope),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn overview(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<PortalQuery>,
) -> Result<Json<PortalEnvelope>, ApiError> {
    let portal = app
        .portal_overview(&principal, query.external_customer_id.as_deref())
        .await?;
    Ok(Json(PortalEnvelope {
        portal: portal.into(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetSubscriptionPaymentMethodRequest {
    /// Required with a secret key; a portal session may leave it out, or must name its own
    /// customer.
    #[schema(value_type = Option<formats::ExternalCustomerId>)]
    pub external_customer_id: Option<String>,
    /// One of the customer's payment methods.
    #[schema(value_type = formats::PaymentMethodId, required = true)]
    pub payment_method_id: Option<String>,
}

/// Links one of the customer's payment methods to its active subscription: the subscription
/// is charged to it from now on, and the method it replaces is free to be removed.
#[utoipa::path(post, path = "/v1/customers/portal/set-subscription-payment-method", tag = "portal",
    request_body = SetSubscriptionPaymentMethodRequest,
    responses((status = 200, body = Success), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The customer has no active subscription")),
    security(("secret_key" = []), ("portal_session" = [])))]
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
    params(("id" = formats::PaymentMethodId, Path, description = "Payment method ID")),
    responses((status = 200, body = Success), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "An active subscription is charged to it")),
    security(("secret_key" = []), ("portal_session" = [])))]
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
    responses((status = 200, body = SubscriptionStatusBody),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalPageQuery {
    /// The merchant's own id of the customer: required with a secret key; a portal session
    /// may leave it out, or must name its own customer.
    #[param(value_type = Option<formats::ExternalCustomerId>)]
    pub external_customer_id: Option<String>,
    /// Page size, 1 to 1000; without it, the whole list.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return items older than this id.
    pub starting_after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalInvoicesEnvelope {
    /// Number, status, document type, total, dates, the PDF's URL and the latest payment's
    /// status (`paymentStatus`) of each.
    #[schema(value_type = Vec<Object>)]
    pub invoices: Vec<serde_json::Value>,
    pub has_more: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalPaymentsEnvelope {
    /// Amount, currency, date, status and the failure's message of each.
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<serde_json::Value>,
    pub has_more: bool,
}

/// The customer's invoices and adjustment documents, newest first.
#[utoipa::path(get, path = "/v1/customers/portal/invoices", tag = "portal", params(PortalPageQuery),
    responses((status = 200, body = PortalInvoicesEnvelope),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn invoices(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<PortalPageQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(query.limit)?;
    let external = query.external_customer_id;
    let page = move |cursor: Option<String>, limit: i64| {
        let (app, principal, external) = (app.clone(), principal.clone(), external.clone());
        async move {
            app.portal_invoices(&principal, external.as_deref(), cursor.as_deref(), limit)
                .await
        }
    };
    paged_list("invoices", limit, query.starting_after, page, item_id).await
}

/// The customer's payments (charges and refunds), newest first.
#[utoipa::path(get, path = "/v1/customers/portal/payments", tag = "portal", params(PortalPageQuery),
    responses((status = 200, body = PortalPaymentsEnvelope),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn payments(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<PortalPageQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(query.limit)?;
    let external = query.external_customer_id;
    let page = move |cursor: Option<String>, limit: i64| {
        let (app, principal, external) = (app.clone(), principal.clone(), external.clone());
        async move {
            app.portal_payments(&principal, external.as_deref(), cursor.as_deref(), limit)
                .await
        }
    };
    paged_list("payments", limit, query.starting_after, page, item_id).await
}

/// The id of a listed invoice or payment: the cursor after it.
fn item_id(item: &serde_json::Value) -> String {
    item["id"].as_str().unwrap_or_default().to_owned()
}
