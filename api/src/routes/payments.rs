//! Payments: `GET /v1/payments` and `GET /v1/payments/{id}`, charges and refunds with the
//! provider's answer.

use app::App;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use projections::read_models::payment_list::PaymentFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, QueryParams};
use crate::pagination::page_limit;
use crate::payment_body::PaymentBody;
use crate::responses::ErrorBody;
use crate::streamed_list::paged_list;

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
    /// Page size, 1 to 1000; without it, every payment.
    #[param(minimum = 1, maximum = 1000)]
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
) -> Result<Response, ApiError> {
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
    let page = move |cursor: Option<String>, limit: i64| {
        let (app, principal, filter) = (app.clone(), principal.clone(), filter.clone());
        async move {
            let (payments, has_more) = app
                .list_payments(&principal, &filter, cursor.as_deref(), limit)
                .await?;
            let payments: Vec<PaymentBody> = payments.into_iter().map(PaymentBody::from).collect();
            Ok((payments, has_more))
        }
    };
    paged_list(
        "payments",
        limit,
        query.starting_after,
        page,
        |payment: &PaymentBody| payment.id.clone(),
    )
    .await
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
