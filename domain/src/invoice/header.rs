use serde::{Deserialize, Serialize};

/// Who a document is from and to, as it was when the document was issued. An issued invoice
/// is never changed, so its PDF does not follow later edits of the customer: the header is
/// recorded with the issue, and every later render reads it from there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentHeader {
    pub merchant_name: String,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    /// The billing address, a line each, as printed.
    pub address_lines: Vec<String>,
    pub tax_id: Option<String>,
    /// On a cancellation or credit note, the number of the invoice it corrects.
    pub original_number: Option<String>,
}
