use std::sync::Arc;

use crate::clock::Clock;
use crate::invoice::Invoice;

/// What the Invoice rules need from outside: the time, and the fingerprint of a document.
#[derive(Clone)]
pub struct InvoiceServices {
    pub clock: Arc<dyn Clock>,
    pub documents: Arc<dyn DocumentFingerprint>,
}

/// The SHA-256 (lowercase hex) of the PDF an invoice in this state renders to, recorded in
/// the event that issues it, so that a PDF rendered again from the log
/// years later can be checked byte for byte. None when the state has no PDF (a draft, or a
/// document issued before headers were recorded).
pub trait DocumentFingerprint: Send + Sync {
    fn pdf_sha256(&self, invoice: &Invoice) -> Option<String>;
}
