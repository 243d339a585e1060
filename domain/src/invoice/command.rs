use chrono::{DateTime, Utc};

use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, SubscriptionId};
use crate::invoice::{DocumentHeader, DocumentType, LineInput};
use crate::tenant::Tenant;

/// What a caller can ask of an invoice. That the customer and subscription exist and belong
/// to the tenant, and the number a document is issued with, are the caller's: it claims the
/// number from the tenant's gapless series atomically with the events.
#[derive(Debug, Clone, PartialEq)]
pub enum InvoiceCommand {
    /// A standard invoice in `draft`, priced from its lines.
    CreateDraft {
        id: InvoiceId,
        tenant: Tenant,
        customer_id: CustomerId,
        subscription_id: Option<SubscriptionId>,
        /// As the caller received it; checked here.
        currency: String,
        lines: Vec<LineInput>,
        period_start: Option<DateTime<Utc>>,
        period_end: Option<DateTime<Utc>>,
    },
    /// Numbers a draft and dates it now. An invoice of 0 is paid at once, with no payment.
    Issue {
        tenant: Tenant,
        number: String,
        /// None: due on issue.
        due_date: Option<DateTime<Utc>>,
        /// Merchant and customer as the document will name them for good.
        header: DocumentHeader,
    },
    /// A charge against this invoice succeeded. The same payment again records nothing:
    /// a settlement counts once, however often it is reported.
    RecordPayment {
        tenant: Tenant,
        payment_id: PaymentId,
        amount_cents: i64,
    },
    /// A draft is voided with no `cancellation_id`. An issued, unpaid invoice needs one: the
    /// id the caller will issue its cancellation document under, after this, with the amount
    /// the `InvoiceVoided` event records.
    Void {
        tenant: Tenant,
        cancellation_id: Option<InvoiceId>,
    },
    /// Records a credit note against this invoice; the caller issues the credit note itself
    /// after this, with the amount the `InvoiceCredited` event records. Without an amount,
    /// everything left to credit.
    Credit {
        tenant: Tenant,
        credit_note_id: InvoiceId,
        amount_cents: Option<i64>,
    },
    /// The grace period ended unpaid: write it off.
    MarkUncollectible { tenant: Tenant },
    /// Creates a cancellation or a credit note as an invoice of its own, issued at once, with
    /// one negative line of `amount_cents`.
    IssueAdjustment {
        id: InvoiceId,
        tenant: Tenant,
        customer_id: CustomerId,
        currency: Currency,
        document_type: DocumentType,
        original_invoice_id: InvoiceId,
        /// Named on its line: "Cancellation of INV-0001".
        original_number: String,
        /// What it reverses, positive.
        amount_cents: i64,
        reason: Option<String>,
        number: String,
        header: DocumentHeader,
    },
}

impl InvoiceCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            InvoiceCommand::CreateDraft { tenant, .. }
            | InvoiceCommand::Issue { tenant, .. }
            | InvoiceCommand::RecordPayment { tenant, .. }
            | InvoiceCommand::Void { tenant, .. }
            | InvoiceCommand::Credit { tenant, .. }
            | InvoiceCommand::MarkUncollectible { tenant, .. }
            | InvoiceCommand::IssueAdjustment { tenant, .. } => tenant,
        }
    }
}
