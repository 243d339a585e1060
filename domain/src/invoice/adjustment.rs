use serde::{Deserialize, Serialize};

use crate::id::InvoiceId;
use crate::invoice::DocumentType;

/// A document that corrected an invoice, as the corrected invoice remembers it: the API's
/// `adjustmentInvoices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceAdjustment {
    pub invoice_id: InvoiceId,
    pub document_type: DocumentType,
    /// What it reversed, as a positive amount.
    pub amount_cents: i64,
}
