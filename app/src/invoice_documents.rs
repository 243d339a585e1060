//! Invoices paid by hand and read as PDFs: `POST /v1/invoices/{id}/pay` charges what is due
//! now (the manual retry), and an issued document renders to a PDF (`documents` crate) with
//! the merchant and customer its issue recorded (`document_rendering.rs`).

use std::sync::Arc;

use domain::id::{CustomerId, InvoiceId};
use domain::invoice::{DocumentHeader, DocumentType, Invoice, InvoiceStatus};
use domain::tenant::Tenant;
use projections::read_models::customer_list::{CustomerListProjection, CustomerListView};
use projections::read_models::invoice_list::InvoiceView;
use projections::read_models::payment_list::PaymentFilter;
use projections::tables::merchants;

use crate::charges::ChargeOutcome;
use crate::context::App;
use crate::document_rendering::{document_of, sha256_hex};
use crate::error::AppError;
use crate::ids::parse_id;
use crate::invoices::NOT_FOUND;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::command_error;
use documents::Renderer;

pub const DRAFT_HAS_NO_PDF: &str = "A draft has no PDF; finalize it first";

/// A rendered PDF, and the name a download saves it under.
pub struct InvoicePdf {
    pub filename: String,
    pub bytes: Arc<Vec<u8>>,
    /// Lowercase hex, as its event recorded it: the download's `ETag`.
    pub sha256: String,
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

    /// Invoice `id` as a PDF; a draft has none. The PDF is rendered from the log and checked
    /// against the digest its issue recorded (a paid one: its issued edition is rendered and
    /// checked too): a document that would render differently now is refused rather than
    /// handed out changed.
    pub async fn invoice_pdf(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<InvoicePdf, AppError> {
        let id: InvoiceId = parse_id(id).map_err(|_| AppError::not_found(NOT_FOUND))?;
        // The log is the document's source: the aggregate, read once, answers every question.
        let mut invoice = self
            .invoices
            .current(id.as_str())
            .await
            .map_err(command_error::<Invoice>)?;
        let customer_id = match (&invoice.tenant, &invoice.customer_id) {
            (Some(owner), Some(customer)) if owner == &principal.tenant => customer.clone(),
            _ => return Err(AppError::not_found(NOT_FOUND)),
        };
        // A portal session reads its own customer's documents only.
        if !principal.reaches_customer(customer_id.as_str()) {
            return Err(AppError::not_found(NOT_FOUND));
        }
        let Some(number) = invoice.number.clone() else {
            return Err(AppError::conflict(DRAFT_HAS_NO_PDF));
        };
        if invoice.header.is_none() {
            // Issued before headers were recorded: the customer as they are now.
            let original_number = match &invoice.original_invoice_id {
                Some(original) => self
                    .invoices
                    .current(original.as_str())
                    .await
                    .ok()
                    .and_then(|original| original.number),
                None => None,
            };
            invoice.header = Some(DocumentHeader {
                original_number,
                ..self
                    .document_header(&principal.tenant, &customer_id)
                    .await?
            });
        }
        let filename = format!("{number}.pdf");
        // What this edition is kept under: its recorded digest, or — a paid edition, whose
        // digest is not recorded — the digest it derives from.
        let unrecorded_paid_edition =
            invoice.recorded_pdf_sha256().is_none() && invoice.status == Some(InvoiceStatus::Paid);
        let kept_as = match (invoice.recorded_pdf_sha256(), invoice.issued_pdf_sha256()) {
            (Some(recorded), _) => Some(recorded.to_owned()),
            (None, Some(issued)) if unrecorded_paid_edition => Some(format!("{issued}:paid")),
            _ => None,
        };
        if let Some(key) = &kept_as {
            if let Some(bytes) = self.pdfs.get(key) {
                let sha256 = match invoice.recorded_pdf_sha256() {
                    Some(recorded) => recorded.to_owned(),
                    None => sha256_hex(&bytes),
                };
                return Ok(InvoicePdf {
                    filename,
                    bytes,
                    sha256,
                });
            }
        }
        let bytes = Arc::new(render(&invoice)?);
        let sha256 = sha256_hex(&bytes);
        match (invoice.recorded_pdf_sha256(), invoice.issued_pdf_sha256()) {
            (Some(recorded), _) => verify_rendering(recorded, &sha256)?,
            (None, Some(issued)) if unrecorded_paid_edition => {
                // The renderer is checked on the document as issued: rendering the log's
                // documents as it did then, it renders the paid edition as it would have.
                let mut as_issued = invoice.clone();
                as_issued.status = Some(InvoiceStatus::Issued);
                verify_rendering(issued, &sha256_hex(&render(&as_issued)?))?;
            }
            // Issued before digests were recorded: rendered unchecked, and not kept.
            _ => {}
        }
        if let Some(key) = kept_as {
            self.pdfs.put(key, bytes.clone());
        }
        Ok(InvoicePdf {
            filename,
            bytes,
            sha256,
        })
    }

    /// Merchant and customer as a document issued now names them.
    pub(crate) async fn document_header(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<DocumentHeader, AppError> {
        let merchant_name = merchants::name(&self.pool, &tenant.merchant_id)
            .await?
            .unwrap_or_default();
        let customer =
            CustomerListProjection::get(&self.pool, tenant, customer_id.as_str()).await?;
        Ok(header_of(merchant_name, customer.as_ref()))
    }
}

/// Merchant `merchant_name` and `customer` (none: deleted) as a document issued now names
/// them.
pub(crate) fn header_of(
    merchant_name: String,
    customer: Option<&CustomerListView>,
) -> DocumentHeader {
    let Some(c) = customer else {
        return DocumentHeader {
            merchant_name,
            ..DocumentHeader::default()
        };
    };
    DocumentHeader {
        merchant_name,
        customer_name: c.name.clone(),
        customer_email: Some(c.email.clone()),
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
        original_number: None,
    }
}

/// The PDF `invoice` shows now, drawn by the renderer that drew it when it was issued.
fn render(invoice: &Invoice) -> Result<Vec<u8>, AppError> {
    let document = document_of(invoice).ok_or_else(|| AppError::conflict(DRAFT_HAS_NO_PDF))?;
    let renderer = Renderer::numbered(invoice.pdf_renderer()).ok_or_else(|| {
        AppError::internal(
            "Failed to render the invoice",
            format!(
                "it was drawn by renderer {}, which this build does not have",
                invoice.pdf_renderer()
            ),
        )
    })?;
    documents::render(&document, renderer)
        .map_err(|e| AppError::internal("Failed to render the invoice", e))
}

/// A document rendered again must give the bytes whose digest its event recorded.
pub(crate) fn verify_rendering(recorded: &str, rendered: &str) -> Result<(), AppError> {
    if recorded == rendered {
        return Ok(());
    }
    Err(AppError::internal(
        "The document no longer renders as it was issued",
        format!("recorded sha256 {recorded}, rendered {rendered}"),
    ))
}
