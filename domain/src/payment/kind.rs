use serde::{Deserialize, Serialize};

/// Which way the money goes: the API's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// From the customer to the merchant.
    Charge,
    /// Back to the customer, against an earlier charge; its amount is negative.
    Refund,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Charge => "charge",
            PaymentKind::Refund => "refund",
        }
    }
}
