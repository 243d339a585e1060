//! Payments: `GET /v1/payments` and `GET /v1/payments/{id}`, charges and refunds with the
//! provider's answer.

use app::App;
use axum::extract::{Path, State};
use axum::Json;
use projections::read_models::payment_list::PaymentFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, QueryParams};
use crate::pagination::page_limit;
use crate::payment_body::PaymentBody;
use crate::responses::ErrorBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentEnvelope {
    pub payment: PaymentBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentListEnvelope {
    pub payments: Vec<PaymentBody>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPaymentsQuery {
    pub customer_id: Option<String>,
    pub invoice_id: Option<String>,
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// Page size, 1 to 100 (10 when not given).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Return payments older than this payment id.
    pub starting_after: Option<String>,
}

/// The merchant's payments, newest first.
#[utoipa::path(get, path = "/v1/payments", tag = "payments", params(ListPaymentsQuery),
    responses((status = 200, body = PaymentListEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_payments(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<ListPaymentsQuery>,
) -> Result<Json<PaymentListEnvelope>, ApiError> {
    let limit = page_limit(query.limit)?;
    if query
        .status
        .as_deref()
        .is_some_and(|s| !["pending", "succeeded", "failed"].contains(&s))
    {
        return Err(ApiError::bad_request(
            "status must be one of pending, succeeded, failed",
        ));
    }
    let filter = PaymentFilter {
        customer_id: query.customer_id,
        invoice_id: query.invoice_id,
        status: query.status,
    };
    let (payments, has_more) = app
        .list_payments(&principal, &filter, query.starting_after.as_deref(), limit)
        .await?;
    Ok(Json(PaymentListEnvelope {
        payments: payments.into_iter().map(PaymentBody::from).collect(),
        has_more,
    }))
}

/// Get a payment by its ID.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "Payment ID")),
    responses((status = 200, body = PaymentEnvelope), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn get_payment(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<PaymentEnvelope>, ApiError> {
    let payment = app.payment(&principal, &id).await?.into();
    Ok(Json(PaymentEnvelope { payment }))
}
