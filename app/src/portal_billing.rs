//! The portal's Invoices and Payment History: a customer's documents and payments, newest
//! first, as the seed's tabs list them (number, status, dates, total, document type, PDF link;
//! amount, date, status, the failure's message). Read from the inline read models, so a
//! payment answered 2xx shows at once.

use domain::id::{InvoiceId, PaymentId};
use domain::tenant::Tenant;
use projections::read_models::invoice_list::{InvoiceFilter, InvoiceListProjection, InvoiceView};
use projections::read_models::payment_list::{PaymentFilter, PaymentListProjection, PaymentView};
use serde_json::{json, Value};

use crate::context::App;
use crate::error::AppError;
use crate::ids::parse_id;
use crate::principal::Principal;

/// How many of each the overview shows; the paged lists have the rest.
pub const OVERVIEW_ITEMS: i64 = 10;

/// An invoice as the portal shows it; `payment_status` is its latest payment's.
pub fn portal_invoice(
    invoice: &InvoiceView,
    payment_status: Option<&str>,
    public_url: &str,
) -> Value {
    json!({
        "id": invoice.id,
        "number": invoice.number,
        "status": invoice.status,
        "documentType": invoice.document_type,
        "currency": invoice.currency,
        "totalAmountCents": invoice.total_amount_cents,
        "amountDueCents": invoice.amount_due_cents(),
        "issueDate": invoice.issue_date,
        "dueDate": invoice.due_date,
        "paidDate": invoice.paid_date,
        "periodStart": invoice.period_start,
        "periodEnd": invoice.period_end,
        "pdfUrl": invoice.number.as_ref().map(|_| format!("{public_url}/v1/invoices/{}/pdf", invoice.id)),
        "paymentStatus": payment_status,
    })
}

/// A payment as the portal shows it.
pub fn portal_payment(payment: &PaymentView) -> Value {
    json!({
        "id": payment.id,
        "type": payment.kind,
        "amountCents": payment.amount_cents,
        "currency": payment.currency,
        "status": payment.status,
        "errorMessage": payment.error_message,
        "errorCode": payment.error_code,
        "invoiceId": payment.invoice_id,
        "createdAt": payment.created_at,
        "settledAt": payment.settled_at,
    })
}

impl App {
    /// The portal customer's invoices, newest first, a page at a time.
    pub async fn portal_invoices(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Value>, bool), AppError> {
        let customer = self
            .portal_customer(principal, external_customer_id)
            .await?;
        self.customer_invoices(
            &principal.tenant,
            customer.id.as_str(),
            starting_after,
            limit,
        )
        .await
    }

    /// The portal customer's payments, newest first, a page at a time.
    pub async fn portal_payments(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Value>, bool), AppError> {
        let customer = self
            .portal_customer(principal, external_customer_id)
            .await?;
        self.customer_payments(
            &principal.tenant,
            customer.id.as_str(),
            starting_after,
            limit,
        )
        .await
    }

    /// The invoices of customer `customer_id`, whom the caller found to be the tenant's.
    pub async fn customer_invoices(
        &self,
        tenant: &Tenant,
        customer_id: &str,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Value>, bool), AppError> {
        if let Some(after) = starting_after {
            parse_id::<InvoiceId>(after)?;
        }
        let filter = InvoiceFilter {
            customer_id: Some(customer_id.to_owned()),
            ..InvoiceFilter::default()
        };
        let (invoices, more) =
            InvoiceListProjection::list(&self.pool, tenant, &filter, starting_after, limit).await?;
        let ids: Vec<String> = invoices.iter().map(|invoice| invoice.id.clone()).collect();
        // Newest first, so the first of an invoice's is its latest.
        let payments = PaymentListProjection::for_invoices(&self.pool, tenant, &ids).await?;
        let latest_status = |invoice: &InvoiceView| {
            payments
                .iter()
                .find(|payment| payment.invoice_id.as_deref() == Some(invoice.id.as_str()))
                .map(|payment| payment.status.as_str())
        };
        let invoices = invoices
            .iter()
            .map(|invoice| portal_invoice(invoice, latest_status(invoice), self.public_url()))
            .collect();
        Ok((invoices, more))
    }

    /// The payments of customer `customer_id`, whom the caller found to be the tenant's.
    pub async fn customer_payments(
        &self,
        tenant: &Tenant,
        customer_id: &str,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<Value>, bool), AppError> {
        if let Some(after) = starting_after {
            parse_id::<PaymentId>(after)?;
        }
        let filter = PaymentFilter {
            customer_id: Some(customer_id.to_owned()),
            ..PaymentFilter::default()
        };
        let (payments, more) =
            PaymentListProjection::list(&self.pool, tenant, &filter, starting_after, limit).await?;
        Ok((payments.iter().map(portal_payment).collect(), more))
    }
}
