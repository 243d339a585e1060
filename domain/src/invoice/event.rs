use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, SubscriptionId};
use crate::invoice::{DocumentHeader, DocumentType, InvoiceLine};
use crate::tenant::Tenant;

/// What happened to an invoice. Type names and payload shapes are stored forever: never
/// rename or reshape one; add a new version and an upcaster instead.
///
/// Each event carries the time it happened: `at`, or the date the document shows where that
/// date is the event's own (`issue_date`, `paid_date`). [`InvoiceEvent::at`] reads either.
// Events are short-lived values, built once and written once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceEvent {
    /// Totals are stored beside the lines so that readers need not price them again, and so
    /// that taxes or discounts can come later without reshaping this event.
    #[serde(rename_all = "camelCase")]
    InvoiceDrafted {
        id: InvoiceId,
        tenant: Tenant,
        customer_id: CustomerId,
        subscription_id: Option<SubscriptionId>,
        currency: Currency,
        document_type: DocumentType,
        lines: Vec<InvoiceLine>,
        subtotal_cents: i64,
        total_amount_cents: i64,
        period_start: Option<DateTime<Utc>>,
        period_end: Option<DateTime<Utc>>,
        /// The invoice a cancellation or credit note corrects.
        original_invoice_id: Option<InvoiceId>,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    InvoiceIssued {
        number: String,
        issue_date: DateTime<Utc>,
        due_date: DateTime<Utc>,
        /// The PDF of the document as issued (see `DocumentFingerprint`).
        pdf_sha256: Option<String>,
        /// The renderer that drew it; absent on documents issued before a second renderer
        /// existed, which the first drew.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pdf_renderer: Option<u16>,
        /// Merchant and customer as the document names them; absent on documents issued
        /// before it was recorded, which take the customer as they are now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<DocumentHeader>,
    },
    #[serde(rename_all = "camelCase")]
    InvoicePaymentRecorded {
        payment_id: PaymentId,
        amount_cents: i64,
        at: DateTime<Utc>,
    },
    /// Nothing is due any more. `payment_id` is the payment that settled it; none when there
    /// was nothing to pay or a credit note took what was left.
    #[serde(rename_all = "camelCase")]
    InvoicePaid {
        paid_date: DateTime<Utc>,
        payment_id: Option<PaymentId>,
        /// The PDF of the paid document, which shows "Paid" and the date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pdf_sha256: Option<String>,
    },
    /// `cancellation_id` is the document that reverses `amount_cents`, what was left of an
    /// issued invoice; a draft is voided with neither (`amount_cents` 0).
    #[serde(rename_all = "camelCase")]
    InvoiceVoided {
        cancellation_id: Option<InvoiceId>,
        amount_cents: i64,
        at: DateTime<Utc>,
    },
    /// `amount_cents` is positive: what the credit note reverses.
    #[serde(rename_all = "camelCase")]
    InvoiceCredited {
        credit_note_id: InvoiceId,
        amount_cents: i64,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    InvoiceMarkedUncollectible { at: DateTime<Utc> },
}

impl InvoiceEvent {
    pub const DRAFTED: &'static str = "InvoiceDrafted";
    pub const ISSUED: &'static str = "InvoiceIssued";
    pub const PAYMENT_RECORDED: &'static str = "InvoicePaymentRecorded";
    pub const PAID: &'static str = "InvoicePaid";
    pub const VOIDED: &'static str = "InvoiceVoided";
    pub const CREDITED: &'static str = "InvoiceCredited";
    pub const MARKED_UNCOLLECTIBLE: &'static str = "InvoiceMarkedUncollectible";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            InvoiceEvent::InvoiceIssued { issue_date, .. } => *issue_date,
            InvoiceEvent::InvoicePaid { paid_date, .. } => *paid_date,
            InvoiceEvent::InvoiceDrafted { at, .. }
            | InvoiceEvent::InvoicePaymentRecorded { at, .. }
            | InvoiceEvent::InvoiceVoided { at, .. }
            | InvoiceEvent::InvoiceCredited { at, .. }
            | InvoiceEvent::InvoiceMarkedUncollectible { at } => *at,
        }
    }
}

impl DomainEvent for InvoiceEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceEvent::InvoiceDrafted { .. } => Self::DRAFTED,
            InvoiceEvent::InvoiceIssued { .. } => Self::ISSUED,
            InvoiceEvent::InvoicePaymentRecorded { .. } => Self::PAYMENT_RECORDED,
            InvoiceEvent::InvoicePaid { .. } => Self::PAID,
            InvoiceEvent::InvoiceVoided { .. } => Self::VOIDED,
            InvoiceEvent::InvoiceCredited { .. } => Self::CREDITED,
            InvoiceEvent::InvoiceMarkedUncollectible { .. } => Self::MARKED_UNCOLLECTIBLE,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
