use serde::{Deserialize, Serialize};

/// What kind of document an invoice is. Each has its own number series (`INV-`, `CAN-`,
/// `CN-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    /// A bill: the customer owes its total.
    Standard,
    /// Reverses what was left of a voided invoice.
    Cancellation,
    /// Reverses part or all of an issued or paid invoice.
    CreditNote,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::Standard => "standard",
            DocumentType::Cancellation => "cancellation",
            DocumentType::CreditNote => "credit_note",
        }
    }

    /// A cancellation or a credit note: a document that corrects another.
    pub fn is_adjustment(self) -> bool {
        self != DocumentType::Standard
    }
}
