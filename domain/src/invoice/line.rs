use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::invoice::InvoiceError;
use crate::money::MAX_AMOUNT_CENTS;

/// The longest line description, in characters: what fits on a PDF line or two.
const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_QUANTITY: i64 = 1_000_000;
/// A hundred million in a currency of two decimals.
const MAX_UNIT_AMOUNT_CENTS: i64 = 10_000_000_000;

/// One line of an invoice as it was billed: `amount_cents` is `quantity` × `unit_amount_cents`,
/// negative only on a cancellation or a credit note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: i64,
    pub unit_amount_cents: i64,
    pub amount_cents: i64,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
}

/// A line as a caller asks for it, before it is checked and priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub description: String,
    pub quantity: i64,
    pub unit_amount_cents: i64,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
}

impl LineInput {
    /// The line checked and priced; `line` is its position, counted from 1, for the error.
    pub(crate) fn price(self, line: usize) -> Result<InvoiceLine, InvoiceError> {
        let description = self.description.trim();
        if description.is_empty() {
            return Err(InvoiceError::DescriptionRequired { line });
        }
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(InvoiceError::DescriptionTooLong { line });
        }
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            return Err(InvoiceError::InvalidQuantity { line });
        }
        if !(0..=MAX_UNIT_AMOUNT_CENTS).contains(&self.unit_amount_cents) {
            return Err(InvoiceError::InvalidUnitAmount { line });
        }
        if ends_before_start(self.period_start, self.period_end) {
            return Err(InvoiceError::LinePeriodEndsBeforeStart { line });
        }
        let amount_cents = self
            .quantity
            .checked_mul(self.unit_amount_cents)
            .filter(|amount| *amount <= MAX_AMOUNT_CENTS)
            .ok_or(InvoiceError::LineAmountTooLarge { line })?;
        Ok(InvoiceLine {
            description: description.to_owned(),
            quantity: self.quantity,
            unit_amount_cents: self.unit_amount_cents,
            amount_cents,
            period_start: self.period_start,
            period_end: self.period_end,
        })
    }
}

/// True when both ends are known and the end comes first. A period of no length is allowed:
/// a one-off charge may give the same instant twice.
pub(crate) fn ends_before_start(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> bool {
    matches!((start, end), (Some(start), Some(end)) if end < start)
}
