//! Invoices paid by hand and read as PDFs: `POST /v1/invoices/{id}/pay` charges what is due
//! now (the manual retry), and an issued document renders to a PDF (`documents` crate) with
//! the merchant's name and the customer's details as they are.

use documents::{DocumentKind, DocumentLine, InvoiceDocument, Party};
use domain::id::InvoiceId;
use domain::invoice::{DocumentType, Invoice, InvoiceStatus};
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::invoice_list::InvoiceView;
use projections::read_models::payment_list::PaymentFilter;
use projections::tables::merchants;
use serde_json::Value;

use crate::charges::ChargeOutcome;
use crate::context::App;
use crate::error::AppError;
use crate::ids::parse_id;
use crate::invoices::NOT_FOUND;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::command_error;

pub const DRAFT_HAS_NO_PDF: &str = "A draft has no PDF; finalize it first";

/// A rendered PDF, and the name a download saves it under.
pub struct InvoicePdf {
    pub filename: String,
    pub bytes: Vec<u8>,
}

impl App {
    /// Charges what invoice `id` owes now, to its subscription's payment method or the
    /// customer's newest: paid, or a 402 with the card's message (the failed payment is on
    /// record either way).
    pub async fn pay_invoice(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<InvoiceView, AppError> {
        let id: InvoiceId = parse_id(id).map_err(|_| AppError::not_found(NOT_FOUND))?;
        let tenant = metadata.tenant().clone();
        let invoice = self
            .invoices
            .current(id.as_str())
            .await
            .map_err(command_error::<Invoice>)?;
        if invoice.tenant.as_ref() != Some(&tenant) {
            return Err(AppError::not_found(NOT_FOUND));
        }
        match invoice.status {
            Some(InvoiceStatus::Paid) => {
                return Err(AppError::conflict("Invoice is already paid"));
            }
            Some(InvoiceStatus::Issued)
                if invoice.document_type == Some(DocumentType::Standard) => {}
            Some(InvoiceStatus::Draft) => {
                return Err(AppError::conflict("Invoice is still a draft"))
            }
            _ => {
                return Err(AppError::conflict(
                    "Only an issued invoice with something due can be paid",
                ))
            }
        }
        let filter = PaymentFilter {
            invoice_id: Some(id.to_string()),
            ..PaymentFilter::default()
        };
        let (tried, _) = self
            .list_payments(&metadata.principal, &filter, None, 1000)
            .await?;
        let attempt = u32::try_from(tried.len()).unwrap_or(u32::MAX - 1) + 1;
        match self.charge_invoice(metadata, &id, attempt).await? {
            ChargeOutcome::Failed { code, message, .. } => Err(AppError::PaymentFailed {
                code: code.unwrap_or_else(|| "card_declined".to_owned()),
                message,
            }),
            _ => self.invoice(&metadata.principal, id.as_str()).await,
        }
    }

    /// Invoice `id` as a PDF; a draft has none.
    pub async fn invoice_pdf(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<InvoicePdf, AppError> {
        let invoice = self.invoice(principal, id).await?;
        // A portal session reads its own customer's documents only.
        if !principal.reaches_customer(&invoice.customer_id) {
            return Err(AppError::not_found(NOT_FOUND));
        }
        let (Some(number), Some(issue_date)) = (invoice.number.clone(), invoice.issue_date) else {
            return Err(AppError::conflict(DRAFT_HAS_NO_PDF));
        };
        let merchant = merchants::name(&self.pool, &principal.tenant.merchant_id)
            .await?
            .unwrap_or_default();
        let customer =
            CustomerListProjection::get(&self.pool, &principal.tenant, &invoice.customer_id)
                .await?;
        let original_number = match &invoice.original_invoice_id {
            Some(original) => self
                .invoice(principal, original)
                .await
                .ok()
                .and_then(|original| original.number),
            None => None,
        };
        let customer = match customer {
            Some(c) => Party {
                name: c.name.clone(),
                email: Some(c.email.clone()),
                address_lines: [
                    c.billing_address_line1.clone(),
                    c.billing_address_line2.clone(),
                    match (&c.billing_postal_code, &c.billing_city) {
                        (Some(code), Some(city)) => Some(format!("{code} {city}")),
                        (None, Some(city)) => Some(city.clone()),
                        (Some(code), None) => Some(code.clone()),
                        (None, None) => None,
                    },
                    c.billing_country.clone(),
                ]
                .into_iter()
                .flatten()
                .collect(),
                tax_id: c.tax_id.clone(),
            },
            None => Party {
                name: None,
                email: None,
                address_lines: Vec::new(),
                tax_id: None,
            },
        };
        let document = InvoiceDocument {
            merchant_name: merchant,
            document_type: match invoice.document_type.as_str() {
                "cancellation" => DocumentKind::Cancellation,
                "credit_note" => DocumentKind::CreditNote,
                _ => DocumentKind::Invoice,
            },
            number: number.clone(),
            currency: invoice.currency.clone(),
            customer,
            issue_date: issue_date.date_naive(),
            due_date: invoice.due_date.map(|d| d.date_naive()),
            paid_date: invoice.paid_date.map(|d| d.date_naive()),
            period: invoice
                .period_start
                .zip(invoice.period_end)
                .map(|(start, end)| (start.date_naive(), end.date_naive())),
            lines: lines_of(&invoice.lines),
            subtotal_cents: invoice.subtotal_cents,
            total_cents: invoice.total_amount_cents,
            amount_paid_cents: invoice.amount_paid_cents,
            amount_due_cents: invoice.amount_due_cents(),
            original_number,
            note: None,
        };
        let bytes = documents::render(&document)
            .map_err(|e| AppError::internal("Failed to render the invoice", e))?;
        Ok(InvoicePdf {
            filename: format!("{number}.pdf"),
            bytes,
        })
    }
}

/// The stored lines as the document shows them.
fn lines_of(lines: &Value) -> Vec<DocumentLine> {
    let date = |line: &Value, field: &str| {
        line.get(field)
            .and_then(Value::as_str)
            .and_then(|value| chrono::DateTime::parse_from_rfc3339(value).ok())
            .map(|value| value.date_naive())
    };
    lines
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|line| DocumentLine {
                    description: line["description"].as_str().unwrap_or_default().to_owned(),
                    quantity: line["quantity"].as_i64().unwrap_or_default(),
                    unit_amount_cents: line["unitAmountCents"].as_i64().unwrap_or_default(),
                    amount_cents: line["amountCents"].as_i64().unwrap_or_default(),
                    period: date(line, "periodStart").zip(date(line, "periodEnd")),
                })
                .collect()
        })
        .unwrap_or_default()
}
