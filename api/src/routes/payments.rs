//! Payments: `GET /v1/payments` and `GET /v1/payments/{id}`, charges and refunds with the
//! provider's answer.

use app::App;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use projections::read_models::payment_list::{PaymentFilter, PaymentView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, QueryParams};
use crate::responses::ErrorBody;
use crate::routes::invoices::page_limit;

/// A charge or refund as every endpoint shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentBody {
    #[schema(example = "pay_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    /// `charge` or `refund`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Negative for a refund.
    pub amount_cents: i64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
    pub customer_id: String,
    pub invoice_id: Option<String>,
    pub payment_method_id: Option<String>,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<PaymentView> for PaymentBody {
    fn from(view: PaymentView) -> Self {
        Self {
            id: view.id,
            kind: view.kind,
            amount_cents: view.amount_cents,
            currency: view.currency,
            status: view.status,
            error_message: view.error_message,
            error_code: view.error_code,
            customer_id: view.customer_id,
            invoice_id: view.invoice_id,
            payment_method_id: view.payment_method_id,
            provider: view.provider,
            created_at: view.created_at,
            settled_at: view.settled_at,
        }
    }
}

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
