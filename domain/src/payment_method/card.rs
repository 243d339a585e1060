use serde::{Deserialize, Serialize};

/// What the portal shows of a card. The number itself never reaches us: the provider keeps
/// it and tells us only these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub brand: String,
    pub last_four: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

impl Card {
    /// Only the month is checked: an expired card is still the customer's to see and remove.
    pub fn has_valid_expiry(&self) -> bool {
        (1..=12).contains(&self.exp_month)
    }
}
