//! An invoice's PDF from its aggregate: the lines, totals and dates of the log, and the
//! header (merchant, customer) recorded when it was issued. The document is the one issued,
//! with "Paid" and the date once paid; later payments or credits are documents of their own.
//!
//! The Invoice aggregate records the digest of the issued edition in the event that issues it,
//! with the renderer that drew it (`DocumentFingerprint`), so a download renders again with
//! that renderer and checks the bytes against it. Documents are issued with
//! `documents::Renderer::CURRENT`; those issued before it are drawn by the renderer they
//! record. The paid edition's digest is not recorded (a render per payment, for a document
//! seldom asked for): its download renders the issued edition too and checks that.

use std::sync::Mutex;

use documents::{DocumentKind, DocumentLine, InvoiceDocument, Party, Renderer};
use domain::invoice::{DocumentFingerprint, DocumentType, Invoice, InvoiceStatus, PdfFingerprint};
use hashlink::LruCache;
use sha2::{Digest, Sha256};

/// How many documents' digests are remembered: enough for the issues waiting for one series'
/// turn at once (`invoices.rs` renders each ahead of it), renewals in bulk among them (a few
/// batches of [`crate::bulk_renewals`]).
const REMEMBERED: usize = 1024;

/// The Invoice aggregate's `DocumentFingerprint`: the digest of the PDF the `documents`
/// crate's current renderer draws of a document being issued. It remembers the digests of the
/// documents it rendered last, whole document for whole document, so a document rendered
/// ahead of its issue (`App::with_next_number`) is not rendered again in the issue's turn; a
/// document that differs in anything renders anew.
pub struct IssuedDocumentDigests {
    rendered: Mutex<LruCache<InvoiceDocument, PdfFingerprint>>,
}

impl Default for IssuedDocumentDigests {
    fn default() -> Self {
        Self {
            rendered: Mutex::new(LruCache::new(REMEMBERED)),
        }
    }
}

impl IssuedDocumentDigests {
    fn remembered(&self) -> std::sync::MutexGuard<'_, LruCache<InvoiceDocument, PdfFingerprint>> {
        // At worst a poisoned map lacks an entry, and the document is rendered again.
        self.rendered.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DocumentFingerprint for IssuedDocumentDigests {
    fn pdf_fingerprint(&self, invoice: &Invoice) -> Option<PdfFingerprint> {
        let document = document_of(invoice)?;
        // Remembered with the renderer that drew it, so a digest is never recorded beside
        // another renderer's number.
        if let Some(fingerprint) = self.remembered().get(&document) {
            return Some(fingerprint.clone());
        }
        match documents::render(&document, Renderer::CURRENT) {
            Ok(bytes) => {
                let fingerprint = PdfFingerprint {
                    sha256: sha256_hex(&bytes),
                    renderer: Renderer::CURRENT.number(),
                };
                self.remembered().insert(document, fingerprint.clone());
                Some(fingerprint)
            }
            Err(error) => {
                // Nothing is recorded, so the download later renders unchecked; the issue
                // itself must not fail on a document it can show anyway.
                tracing::error!(%error, "an issued document did not render");
                None
            }
        }
    }
}

/// Lowercase hex SHA-256: how a document's digest is recorded and compared.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What the PDF of `invoice` shows now; none for a draft or without a header.
pub fn document_of(invoice: &Invoice) -> Option<InvoiceDocument> {
    let header = invoice.header.as_ref()?;
    let number = invoice.number.clone()?;
    let issue_date = invoice.issue_date?;
    let document_type = invoice.document_type?;
    let paid = invoice.status == Some(InvoiceStatus::Paid);
    let (amount_paid_cents, amount_due_cents) = match (document_type, paid) {
        (DocumentType::Standard, true) => (invoice.amount_paid_cents, 0),
        // As issued: what was due then.
        (DocumentType::Standard, false) => (0, invoice.total_amount_cents),
        // A correction owes nothing.
        _ => (0, 0),
    };
    Some(InvoiceDocument {
        merchant_name: header.merchant_name.clone(),
        document_type: match document_type {
            DocumentType::Standard => DocumentKind::Invoice,
            DocumentType::Cancellation => DocumentKind::Cancellation,
            DocumentType::CreditNote => DocumentKind::CreditNote,
        },
        number,
        currency: invoice
            .currency
            .as_ref()
            .map(|currency| currency.as_str().to_owned())
            .unwrap_or_default(),
        customer: Party {
            name: header.customer_name.clone(),
            email: header.customer_email.clone(),
            address_lines: header.address_lines.clone(),
            tax_id: header.tax_id.clone(),
        },
        issue_date: issue_date.date_naive(),
        due_date: invoice.due_date.map(|date| date.date_naive()),
        paid_date: invoice
            .paid_date
            .filter(|_| paid)
            .map(|date| date.date_naive()),
        period: invoice
            .period_start
            .zip(invoice.period_end)
            .map(|(start, end)| (start.date_naive(), end.date_naive())),
        lines: invoice
            .lines
            .iter()
            .map(|line| DocumentLine {
                description: line.description.clone(),
                quantity: line.quantity,
                unit_amount_cents: line.unit_amount_cents,
                amount_cents: line.amount_cents,
                period: line
                    .period_start
                    .zip(line.period_end)
                    .map(|(start, end)| (start.date_naive(), end.date_naive())),
            })
            .collect(),
        subtotal_cents: invoice.subtotal_cents,
        total_cents: invoice.total_amount_cents,
        amount_paid_cents,
        amount_due_cents,
        original_number: header.original_number.clone(),
        note: None,
    })
}
