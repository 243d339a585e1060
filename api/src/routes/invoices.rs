//! Invoices: `POST /v1/invoices` (a draft), `GET /v1/invoices`, `GET /v1/invoices/numbering`,
//! `GET /v1/invoices/{id}`, `POST /v1/invoices/{id}/finalize|pay|void|credit-notes`, and
//! `GET /v1/invoices/{id}/pdf`.

use std::collections::HashMap;

use app::invoices::{NewInvoice, NewLine};
use app::App;
use app::AppError;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use projections::read_models::invoice_list::{InvoiceFilter, InvoiceView};
use projections::read_models::payment_list::PaymentView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody, QueryParams};
use crate::pagination::page_limit;
use crate::payment_body::PaymentBody;
use crate::responses::ErrorBody;
use crate::streamed_list::paged_list;

/// An invoice, cancellation or credit note as every endpoint shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceBody {
    #[schema(example = "inv_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    /// Given when issued: `INV-0001`, `CAN-0001`, `CN-0001`.
    pub number: Option<String>,
    pub customer_id: String,
    pub subscription_id: Option<String>,
    /// `draft`, `issued`, `paid`, `void` or `uncollectible`.
    pub status: String,
    /// `standard`, `cancellation` or `credit_note`.
    pub document_type: String,
    pub currency: String,
    #[schema(value_type = Vec<Object>)]
    pub lines: Value,
    pub subtotal_cents: i64,
    pub total_amount_cents: i64,
    pub amount_paid_cents: i64,
    pub amount_due_cents: i64,
    pub issue_date: Option<DateTime<Utc>>,
    pub due_date: Option<DateTime<Utc>>,
    pub paid_date: Option<DateTime<Utc>>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    /// On a cancellation or credit note: the invoice it corrects.
    pub original_invoice_id: Option<String>,
    /// On an invoice: the documents that corrected it.
    #[schema(value_type = Vec<Object>)]
    pub adjustment_invoices: Value,
    pub payments: Vec<PaymentBody>,
    /// The latest payment's status, if any was made.
    pub payment_status: Option<String>,
    /// Where the PDF is; none for a draft.
    pub pdf_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl InvoiceBody {
    pub fn new(view: InvoiceView, payments: Vec<PaymentView>, public_url: &str) -> Self {
        let amount_due_cents = view.amount_due_cents();
        let payments: Vec<PaymentBody> = payments.into_iter().map(PaymentBody::from).collect();
        Self {
            pdf_url: view
                .number
                .as_ref()
                .map(|_| format!("{public_url}/v1/invoices/{}/pdf", view.id)),
            payment_status: payments.first().map(|p| p.status.clone()),
            id: view.id,
            number: view.number,
            customer_id: view.customer_id,
            subscription_id: view.subscription_id,
            status: view.status,
            document_type: view.document_type,
            currency: view.currency,
            lines: view.lines,
            subtotal_cents: view.subtotal_cents,
            total_amount_cents: view.total_amount_cents,
            amount_paid_cents: view.amount_paid_cents,
            amount_due_cents,
            issue_date: view.issue_date,
            due_date: view.due_date,
            paid_date: view.paid_date,
            period_start: view.period_start,
            period_end: view.period_end,
            original_invoice_id: view.original_invoice_id,
            adjustment_invoices: view.adjustments,
            payments,
            created_at: view.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceEnvelope {
    pub invoice: InvoiceBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceListEnvelope {
    pub invoices: Vec<InvoiceBody>,
    pub has_more: bool,
}

/// The invoices with their payments, newest first: one query for all their payments.
pub async fn invoice_bodies(
    app: &App,
    principal: &app::Principal,
    views: Vec<InvoiceView>,
) -> Result<Vec<InvoiceBody>, AppError> {
    let ids: Vec<String> = views.iter().map(|view| view.id.clone()).collect();
    let mut payments: HashMap<String, Vec<PaymentView>> = HashMap::new();
    for payment in app.payments_of_invoices(principal, &ids).await? {
        if let Some(invoice) = payment.invoice_id.clone() {
            payments.entry(invoice).or_default().push(payment);
        }
    }
    Ok(views
        .into_iter()
        .map(|view| {
            let own = payments.remove(&view.id).unwrap_or_default();
            InvoiceBody::new(view, own, app.public_url())
        })
        .collect())
}

/// The invoice with its payments, newest first.
pub async fn invoice_body(
    app: &App,
    principal: &app::Principal,
    view: InvoiceView,
) -> Result<InvoiceBody, ApiError> {
    let mut bodies = invoice_bodies(app, principal, vec![view]).await?;
    bodies
        .pop()
        .ok_or_else(|| ApiError::internal("Internal server error", "no invoice"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineRequest {
    #[schema(required = true)]
    pub description: Option<String>,
    /// 1 to 1000000; 1 when not given.
    #[schema(minimum = 1, maximum = 1000000)]
    pub quantity: Option<i64>,
    #[schema(required = true, minimum = 0, maximum = 10000000000_i64)]
    pub unit_amount_cents: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateInvoiceRequest {
    #[schema(required = true)]
    pub customer_id: Option<String>,
    #[schema(required = true, example = "USD")]
    pub currency: Option<String>,
    #[schema(required = true, min_items = 1)]
    pub lines: Option<Vec<LineRequest>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListInvoicesQuery {
    pub customer_id: Option<String>,
    /// `draft`, `issued`, `paid`, `void` or `uncollectible`.
    pub status: Option<String>,
    /// `standard`, `cancellation` or `credit_note`.
    pub document_type: Option<String>,
    /// Page size, 1 to 1000; without it, every invoice.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return invoices older than this invoice id.
    pub starting_after: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreditNoteRequest {
    /// What to credit, in cents; all that is left when not given.
    #[schema(minimum = 1)]
    pub amount_cents: Option<i64>,
    /// Why the invoice is corrected: printed on the credit note.
    #[schema(required = true, min_length = 1)]
    pub reason: Option<String>,
}

/// A POST that takes no fields: empty, or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

fn one_of(value: &Option<String>, allowed: &[&str], name: &str) -> Result<(), ApiError> {
    match value {
        Some(value) if !allowed.contains(&value.as_str()) => Err(ApiError::bad_request(format!(
            "{name} must be one of {}",
            allowed.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Create a draft invoice for a customer.
#[utoipa::path(post, path = "/v1/invoices", tag = "invoices", request_body = CreateInvoiceRequest,
    responses((status = 201, body = InvoiceEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such customer")),
    security(("secret_key" = [])))]
pub async fn create_invoice(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<CreateInvoiceRequest>,
) -> Result<(StatusCode, Json<InvoiceEnvelope>), ApiError> {
    let new = NewInvoice {
        customer_id: body.customer_id,
        currency: body.currency,
        lines: body.lines.map(|lines| {
            lines
                .into_iter()
                .map(|line| NewLine {
                    description: line.description,
                    quantity: line.quantity,
                    unit_amount_cents: line.unit_amount_cents,
                })
                .collect()
        }),
    };
    let view = app.create_invoice(&metadata, new).await?;
    let invoice = invoice_body(&app, &metadata.principal, view).await?;
    Ok((StatusCode::CREATED, Json(InvoiceEnvelope { invoice })))
}

/// The merchant's invoices, newest first.
#[utoipa::path(get, path = "/v1/invoices", tag = "invoices", params(ListInvoicesQuery),
    responses((status = 200, body = InvoiceListEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_invoices(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<ListInvoicesQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(query.limit)?;
    one_of(
        &query.status,
        &["draft", "issued", "paid", "void", "uncollectible"],
        "status",
    )?;
    one_of(
        &query.document_type,
        &["standard", "cancellation", "credit_note"],
        "documentType",
    )?;
    let filter = InvoiceFilter {
        customer_id: query.customer_id,
        subscription_id: None,
        status: query.status,
        document_type: query.document_type,
    };
    let page = move |cursor: Option<String>, limit: i64| {
        let (app, principal, filter) = (app.clone(), principal.clone(), filter.clone());
        async move {
            let (views, has_more) = app
                .list_invoices(&principal, &filter, cursor.as_deref(), limit)
                .await?;
            Ok((invoice_bodies(&app, &principal, views).await?, has_more))
        }
    };
    paged_list(
        "invoices",
        limit,
        query.starting_after,
        page,
        |invoice: &InvoiceBody| invoice.id.clone(),
    )
    .await
}

/// Get an invoice by its ID.
#[utoipa::path(get, path = "/v1/invoices/{id}", tag = "invoices",
    params(("id" = String, Path, description = "Invoice ID")),
    responses((status = 200, body = InvoiceEnvelope), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn get_invoice(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<InvoiceEnvelope>, ApiError> {
    let view = app.invoice(&principal, &id).await?;
    let invoice = invoice_body(&app, &principal, view).await?;
    Ok(Json(InvoiceEnvelope { invoice }))
}

/// Issue a draft: it gets the next number of its series.
#[utoipa::path(post, path = "/v1/invoices/{id}/finalize", tag = "invoices",
    request_body(content = EmptyRequest, description = "None, or `{}`"),
    params(("id" = String, Path, description = "Invoice ID")),
    responses((status = 200, body = InvoiceEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not a draft")),
    security(("secret_key" = [])))]
pub async fn finalize_invoice(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Json<InvoiceEnvelope>, ApiError> {
    let view = app.finalize_invoice(&metadata, &id).await?;
    let invoice = invoice_body(&app, &metadata.principal, view).await?;
    Ok(Json(InvoiceEnvelope { invoice }))
}

/// Charge what the invoice owes now, to the customer's payment method.
#[utoipa::path(post, path = "/v1/invoices/{id}/pay", tag = "invoices",
    request_body(content = EmptyRequest, description = "None, or `{}`"),
    params(("id" = String, Path, description = "Invoice ID")),
    responses((status = 200, body = InvoiceEnvelope), (status = 402, body = ErrorBody,
        description = "The card was declined; the failed payment is recorded"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Already paid, a draft, or void")),
    security(("secret_key" = [])))]
pub async fn pay_invoice(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Json<InvoiceEnvelope>, ApiError> {
    let view = app.pay_invoice(&metadata, &id).await?;
    let invoice = invoice_body(&app, &metadata.principal, view).await?;
    Ok(Json(InvoiceEnvelope { invoice }))
}

/// Void an invoice: a draft without a number, an issued unpaid one with its cancellation
/// document, which is answered. A paid invoice is refused: issue a credit note.
#[utoipa::path(post, path = "/v1/invoices/{id}/void", tag = "invoices",
    request_body(content = EmptyRequest, description = "None, or `{}`"),
    params(("id" = String, Path, description = "Invoice ID")),
    responses((status = 200, body = InvoiceEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Paid, or void already")),
    security(("secret_key" = [])))]
pub async fn void_invoice(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(_): JsonBody<EmptyRequest>,
) -> Result<Json<InvoiceEnvelope>, ApiError> {
    let view = app.void_invoice(&metadata, &id).await?;
    let invoice = invoice_body(&app, &metadata.principal, view).await?;
    Ok(Json(InvoiceEnvelope { invoice }))
}

/// Issue a credit note for (part of) an invoice; never more than is left to credit.
#[utoipa::path(post, path = "/v1/invoices/{id}/credit-notes", tag = "invoices",
    request_body = CreditNoteRequest,
    params(("id" = String, Path, description = "Invoice ID")),
    responses((status = 201, body = InvoiceEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_credit_note(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CreditNoteRequest>,
) -> Result<(StatusCode, Json<InvoiceEnvelope>), ApiError> {
    let view = app
        .credit_invoice(&metadata, &id, body.amount_cents, body.reason)
        .await?;
    let invoice = invoice_body(&app, &metadata.principal, view).await?;
    Ok((StatusCode::CREATED, Json(InvoiceEnvelope { invoice })))
}

/// One number series of the merchant.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesBody {
    /// The numbers' prefix: `INV`, `CAN`, `CN`.
    pub series: String,
    pub first: i64,
    pub last: i64,
    pub count: i64,
    /// `count == last` and `first == 1`: no number is missing.
    pub gapless: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NumberingEnvelope {
    pub series: Vec<SeriesBody>,
}

/// Each number series of the merchant, proved gapless.
#[utoipa::path(get, path = "/v1/invoices/numbering", tag = "invoices",
    responses((status = 200, body = NumberingEnvelope)),
    security(("secret_key" = [])))]
pub async fn numbering(
    State(app): State<App>,
    Caller(principal): Caller,
) -> Result<Json<NumberingEnvelope>, ApiError> {
    let series = app
        .invoice_numbering(&principal)
        .await?
        .into_iter()
        .map(|s| SeriesBody {
            gapless: s.first == 1 && i64::from(s.last) == s.count,
            series: s.series,
            first: i64::from(s.first),
            last: i64::from(s.last),
            count: s.count,
        })
        .collect();
    Ok(Json(NumberingEnvelope { series }))
}

/// The invoice as a PDF; the same bytes on every download (ETag).
#[utoipa::path(get, path = "/v1/invoices/{id}/pdf", tag = "invoices",
    params(("id" = String, Path, description = "Invoice ID")),
    responses((status = 200, content_type = "application/pdf", description = "The PDF"),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A draft has no PDF")),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn invoice_pdf(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let pdf = app.invoice_pdf(&principal, &id).await?;
    let etag = format!("\"{}\"", pdf.sha256);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let disposition = format!("attachment; filename=\"{}\"", pdf.filename);
    let mut response = (StatusCode::OK, pdf.bytes.to_vec()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}
