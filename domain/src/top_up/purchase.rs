use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::credit::FeatureSlug;
use crate::id::{CreditGrantId, InvoiceId, TopUpId};

/// The ids a purchase makes its documents under, derived by the caller from the charge, so
/// that every settlement of that charge makes the same invoice and the same grant, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseIds {
    pub invoice_id: InvoiceId,
    pub grant_id: CreditGrantId,
}

/// A purchase of a top-up, priced and counted when the customer bought it: recorded on its
/// charge (`PaymentInitiated.topUp`), it is what a succeeded charge turns into — a paid
/// invoice of one line and a grant (source `topup`) — whatever the top-up says later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopUpPurchase {
    pub top_up_id: TopUpId,
    pub feature_slug: FeatureSlug,
    /// The top-up's name, the invoice line's text.
    pub name: String,
    pub quantity: i64,
    pub unit_amount_cents: i64,
    /// Credits granted: the quantity times the top-up's credits per unit.
    pub credits: i64,
    /// When it was bought: the grant starts then.
    pub purchased_at: DateTime<Utc>,
    /// When the granted credits expire: the purchase's time plus the top-up's days.
    pub expires_at: Option<DateTime<Utc>>,
    pub invoice_id: InvoiceId,
    pub grant_id: CreditGrantId,
}

impl TopUpPurchase {
    /// What it costs: the quantity times the unit amount.
    pub fn amount_cents(&self) -> i64 {
        self.quantity.saturating_mul(self.unit_amount_cents)
    }
}
