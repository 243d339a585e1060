use std::sync::Arc;

use crate::clock::Clock;
use crate::invoice::Invoice;

/// What the Invoice rules need from outside: the time, and the fingerprint of a document.
#[derive(Clone)]
pub struct InvoiceServices {
    pub clock: Arc<dyn Clock>,
    pub documents: Arc<dyn DocumentFingerprint>,
}

/// The PDF an invoice in this state renders to, recorded in the event that issues it, so
/// that a PDF rendered again from the log years later can be checked byte for byte. None
/// when the state has no PDF (a draft, or a document issued before headers were recorded).
pub trait DocumentFingerprint: Send + Sync {
    fn pdf_fingerprint(&self, invoice: &Invoice) -> Option<PdfFingerprint>;
}

/// A rendered PDF's SHA-256 (lowercase hex), and the number of the renderer that drew it: a
/// document is drawn again by the renderer that first drew it, whatever renders documents
/// issued later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfFingerprint {
    pub sha256: String,
    pub renderer: u16,
}

/// The renderer of documents whose issue records none: the first, before there were others.
pub const FIRST_RENDERER: u16 = 1;
