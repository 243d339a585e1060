use serde::{Deserialize, Serialize};

/// Where an invoice is in its life: `draft` → `issued` → `paid` | `void` | `uncollectible`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Lines may still be wrong: no number, no PDF, nothing owed yet.
    Draft,
    /// Numbered and owed. Cancellations and credit notes stay here: they owe nothing and
    /// are never paid, and `issued` is what they are.
    Issued,
    Paid,
    Void,
    /// Written off: the customer is no longer asked to pay it.
    Uncollectible,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Issued => "issued",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }
}
