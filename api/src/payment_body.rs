//! A payment as every endpoint that shows one shows it: the payments API and an invoice's
//! `payments`.

use chrono::{DateTime, Utc};
use projections::read_models::payment_list::PaymentView;
use serde::Serialize;
use utoipa::ToSchema;

/// A charge or refund as every endpoint shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentBody {
    #[schema(example = "pay_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    /// `charge` or `refund`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Negative for a refund.
    pub amount_cents: i64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
    pub customer_id: String,
    pub invoice_id: Option<String>,
    pub payment_method_id: Option<String>,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl From<PaymentView> for PaymentBody {
    fn from(view: PaymentView) -> Self {
        Self {
            id: view.id,
            kind: view.kind,
            amount_cents: view.amount_cents,
            currency: view.currency,
            status: view.status,
            error_message: view.error_message,
            error_code: view.error_code,
            customer_id: view.customer_id,
            invoice_id: view.invoice_id,
            payment_method_id: view.payment_method_id,
            provider: view.provider,
            created_at: view.created_at,
            settled_at: view.settled_at,
        }
    }
}
