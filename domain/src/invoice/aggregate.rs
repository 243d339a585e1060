use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, SubscriptionId};
use crate::invoice::line::ends_before_start;
use crate::invoice::{
    DocumentHeader, DocumentType, InvoiceAdjustment, InvoiceCommand, InvoiceError, InvoiceEvent,
    InvoiceLine, InvoiceServices, InvoiceStatus, FIRST_RENDERER,
};
use crate::money::MAX_AMOUNT_CENTS;
use crate::tenant::Tenant;

/// The longest reason a credit note or cancellation gives, in characters.
const MAX_REASON_CHARS: usize = 500;

/// An invoice as its events describe it. `Default` is the invoice that was never drafted:
/// cqrs-es loads an unknown id that way.
///
/// What is owed is `total − credited − paid`: a credit note on an issued invoice lowers what
/// the customer still has to pay, and when it leaves nothing to pay the invoice is paid with
/// no payment, as an invoice of 0 is. Cancellations and credit notes are invoices of their
/// own with a negative total; they stay `issued`, owe nothing and take no further change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: Option<InvoiceId>,
    pub tenant: Option<Tenant>,
    pub customer_id: Option<CustomerId>,
    pub subscription_id: Option<SubscriptionId>,
    pub currency: Option<Currency>,
    pub document_type: Option<DocumentType>,
    pub status: Option<InvoiceStatus>,
    pub lines: Vec<InvoiceLine>,
    pub subtotal_cents: i64,
    pub total_amount_cents: i64,
    pub amount_paid_cents: i64,
    pub number: Option<String>,
    pub issue_date: Option<DateTime<Utc>>,
    pub due_date: Option<DateTime<Utc>>,
    pub paid_date: Option<DateTime<Utc>>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    /// The invoice a cancellation or credit note corrects.
    pub original_invoice_id: Option<InvoiceId>,
    /// The documents that corrected this invoice, in order.
    pub adjustments: Vec<InvoiceAdjustment>,
    /// The sum of `adjustments`.
    pub credited_cents: i64,
    /// Every payment recorded against it, so that each counts once.
    pub payment_ids: Vec<PaymentId>,
    /// The PDF as issued.
    pub pdf_sha256: Option<String>,
    /// The renderer that drew it, if the issue recorded one.
    #[serde(default)]
    pub pdf_renderer: Option<u16>,
    /// Merchant and customer as the document names them.
    #[serde(default)]
    pub header: Option<DocumentHeader>,
    /// The PDF as paid.
    #[serde(default)]
    pub paid_pdf_sha256: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

impl Invoice {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// What the customer still has to pay; never negative, and nothing on a void invoice.
    pub fn amount_due_cents(&self) -> i64 {
        if self.status == Some(InvoiceStatus::Void) {
            return 0;
        }
        self.total_amount_cents
            .saturating_sub(self.credited_cents)
            .saturating_sub(self.amount_paid_cents)
            .max(0)
    }

    /// What a credit note may still reverse: the total less every earlier adjustment.
    pub fn remaining_to_credit_cents(&self) -> i64 {
        self.total_amount_cents
            .saturating_sub(self.credited_cents)
            .max(0)
    }

    /// The invoice as `tenant` may see it: another tenant's does not exist for it.
    fn owned_by(&self, tenant: &Tenant) -> Result<(), InvoiceError> {
        match &self.tenant {
            Some(owner) if self.exists() && owner == tenant => Ok(()),
            _ => Err(InvoiceError::NotFound),
        }
    }

    /// As [`Self::owned_by`], and a bill rather than a correction of one: what paying,
    /// voiding, crediting and writing off ask.
    fn standard_owned_by(&self, tenant: &Tenant) -> Result<(), InvoiceError> {
        self.owned_by(tenant)?;
        self.standard()
    }

    fn standard(&self) -> Result<(), InvoiceError> {
        match self.document_type {
            Some(DocumentType::Standard) => Ok(()),
            _ => Err(InvoiceError::NotStandard),
        }
    }

    fn status(&self) -> Result<InvoiceStatus, InvoiceError> {
        self.status.ok_or(InvoiceError::NotFound)
    }

    /// The PDF this invoice renders to now, as recorded: the paid one once paid (recorded only
    /// by payments before 2026-12-04; see [`Invoice::paid`]).
    pub fn recorded_pdf_sha256(&self) -> Option<&str> {
        match self.status {
            Some(InvoiceStatus::Paid) => self.paid_pdf_sha256.as_deref(),
            _ => self.pdf_sha256.as_deref(),
        }
    }

    /// The PDF the issue recorded: the document as issued, whatever happened to it since.
    pub fn issued_pdf_sha256(&self) -> Option<&str> {
        self.pdf_sha256.as_deref()
    }

    /// The renderer that drew the document as issued, and draws it again.
    pub fn pdf_renderer(&self) -> u16 {
        self.pdf_renderer.unwrap_or(FIRST_RENDERER)
    }

    /// Issue `event` with the fingerprint of the document it issues.
    fn sealed(&self, mut event: InvoiceEvent, services: &InvoiceServices) -> InvoiceEvent {
        let mut after = self.clone();
        after.apply(event.clone());
        let fingerprint = services.documents.pdf_fingerprint(&after);
        if let InvoiceEvent::InvoiceIssued {
            pdf_sha256,
            pdf_renderer,
            ..
        } = &mut event
        {
            *pdf_renderer = fingerprint.as_ref().map(|f| f.renderer);
            *pdf_sha256 = fingerprint.map(|f| f.sha256);
        }
        event
    }

    /// Paid in full at `at`, by `payment_id` or by nothing left to pay.
    ///
    /// The paid edition's digest is not recorded (payments before 2026-12-04 recorded it, and
    /// it is still honoured where it is): it cost every payment, and so every renewal, a
    /// second render of a PDF that is seldom downloaded. The paid edition is the issued
    /// document with "Paid" and the date, rendered from the log; a download checks the
    /// renderer against the issue's recorded digest instead (`invoice_documents.rs`).
    fn paid(at: DateTime<Utc>, payment_id: Option<PaymentId>) -> InvoiceEvent {
        InvoiceEvent::InvoicePaid {
            paid_date: at,
            payment_id,
            pdf_sha256: None,
        }
    }

    /// Records a document that reversed `amount_cents` of this invoice.
    fn adjust(&mut self, invoice_id: InvoiceId, document_type: DocumentType, amount_cents: i64) {
        self.credited_cents = self.credited_cents.saturating_add(amount_cents);
        self.adjustments.push(InvoiceAdjustment {
            invoice_id,
            document_type,
            amount_cents,
        });
    }
}

/// The number, trimmed; blank counts as missing.
fn parse_number(raw: &str) -> Result<String, InvoiceError> {
    match raw.trim() {
        "" => Err(InvoiceError::NumberRequired),
        number => Ok(number.to_owned()),
    }
}

/// The one line of a cancellation or credit note: "Cancellation of INV-0001", "Credit note for
/// INV-0001: damaged goods".
fn adjustment_description(
    document_type: DocumentType,
    original_number: &str,
    reason: Option<&str>,
) -> String {
    let head = match document_type {
        DocumentType::Cancellation => format!("Cancellation of {original_number}"),
        DocumentType::CreditNote | DocumentType::Standard => {
            format!("Credit note for {original_number}")
        }
    };
    match reason {
        Some(reason) => format!("{head}: {reason}"),
        None => head,
    }
}

impl Aggregate for Invoice {
    const TYPE: &'static str = "Invoice";
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    type Error = InvoiceError;
    type Services = InvoiceServices;

    async fn handle(
        &mut self,
        command: InvoiceCommand,
        services: &InvoiceServices,
        sink: &EventSink<Self>,
    ) -> Result<(), InvoiceError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            InvoiceCommand::CreateDraft {
                id,
                tenant,
                customer_id,
                subscription_id,
                currency,
                lines,
                period_start,
                period_end,
            } => {
                if self.exists() {
                    return Err(InvoiceError::AlreadyExists);
                }
                let currency = Currency::parse(&currency)?;
                if lines.is_empty() {
                    return Err(InvoiceError::NoLines);
                }
                if ends_before_start(period_start, period_end) {
                    return Err(InvoiceError::PeriodEndsBeforeStart);
                }
                let lines = lines
                    .into_iter()
                    .enumerate()
                    .map(|(index, line)| line.price(index + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let total = lines
                    .iter()
                    .try_fold(0_i64, |sum, line| {
                        sum.checked_add(line.amount_cents)
                            .filter(|sum| *sum <= MAX_AMOUNT_CENTS)
                    })
                    .ok_or(InvoiceError::TotalTooLarge)?;
                let event = InvoiceEvent::InvoiceDrafted {
                    id,
                    tenant,
                    customer_id,
                    subscription_id,
                    currency,
                    document_type: DocumentType::Standard,
                    lines,
                    subtotal_cents: total,
                    total_amount_cents: total,
                    period_start,
                    period_end,
                    original_invoice_id: None,
                    at,
                };
                sink.write(event, self).await;
            }
            InvoiceCommand::Issue {
                tenant,
                number,
                due_date,
                header,
            } => {
                self.owned_by(&tenant)?;
                match self.status()? {
                    InvoiceStatus::Draft => {}
                    InvoiceStatus::Void => return Err(InvoiceError::Voided),
                    InvoiceStatus::Issued | InvoiceStatus::Paid | InvoiceStatus::Uncollectible => {
                        return Err(InvoiceError::AlreadyIssued)
                    }
                }
                let number = parse_number(&number)?;
                let due_date = due_date.unwrap_or(at);
                if due_date < at {
                    return Err(InvoiceError::DueDateBeforeIssueDate);
                }
                let event = InvoiceEvent::InvoiceIssued {
                    number,
                    issue_date: at,
                    due_date,
                    pdf_sha256: None,
                    pdf_renderer: None,
                    header: Some(header),
                };
                sink.write(self.sealed(event, services), self).await;
                if self.amount_due_cents() == 0 {
                    sink.write(Self::paid(at, None), self).await;
                }
            }
            InvoiceCommand::RecordPayment {
                tenant,
                payment_id,
                amount_cents,
            } => {
                self.owned_by(&tenant)?;
                // A provider's answer and its webhook both report the same settlement.
                if self.payment_ids.contains(&payment_id) {
                    return Ok(());
                }
                self.standard()?;
                match self.status()? {
                    InvoiceStatus::Issued => {}
                    InvoiceStatus::Draft => return Err(InvoiceError::StillDraft),
                    InvoiceStatus::Paid => return Err(InvoiceError::InvoiceAlreadyPaid),
                    InvoiceStatus::Void => return Err(InvoiceError::Voided),
                    InvoiceStatus::Uncollectible => return Err(InvoiceError::Uncollectible),
                }
                if !(1..=MAX_AMOUNT_CENTS).contains(&amount_cents)
                    || self.amount_paid_cents.checked_add(amount_cents).is_none()
                {
                    return Err(InvoiceError::InvalidPaymentAmount);
                }
                let event = InvoiceEvent::InvoicePaymentRecorded {
                    payment_id: payment_id.clone(),
                    amount_cents,
                    at,
                };
                sink.write(event, self).await;
                if self.amount_due_cents() == 0 {
                    sink.write(Self::paid(at, Some(payment_id)), self).await;
                }
            }
            InvoiceCommand::Void {
                tenant,
                cancellation_id,
            } => {
                self.standard_owned_by(&tenant)?;
                let amount_cents = match (self.status()?, cancellation_id.as_ref()) {
                    (InvoiceStatus::Draft, None) => 0,
                    (InvoiceStatus::Draft, Some(_)) => {
                        return Err(InvoiceError::DraftNeedsNoCancellation)
                    }
                    (InvoiceStatus::Issued, _) if self.amount_paid_cents > 0 => {
                        return Err(InvoiceError::PartlyPaidCannotBeVoided)
                    }
                    (InvoiceStatus::Issued, None) => {
                        return Err(InvoiceError::CancellationRequired)
                    }
                    (InvoiceStatus::Issued, Some(_)) => self.remaining_to_credit_cents(),
                    (InvoiceStatus::Paid, _) => return Err(InvoiceError::PaidCannotBeVoided),
                    // The same void again, as a flow resumed after a crash sends it.
                    (InvoiceStatus::Void, Some(id))
                        if self.adjustments.iter().any(|a| &a.invoice_id == id) =>
                    {
                        return Ok(())
                    }
                    (InvoiceStatus::Void, _) => return Err(InvoiceError::AlreadyVoid),
                    (InvoiceStatus::Uncollectible, _) => return Err(InvoiceError::Uncollectible),
                };
                let event = InvoiceEvent::InvoiceVoided {
                    cancellation_id,
                    amount_cents,
                    at,
                };
                sink.write(event, self).await;
            }
            InvoiceCommand::Credit {
                tenant,
                credit_note_id,
                amount_cents,
            } => {
                self.standard_owned_by(&tenant)?;
                // The same credit note again, as a flow resumed after a crash sends it.
                if self
                    .adjustments
                    .iter()
                    .any(|a| a.invoice_id == credit_note_id)
                {
                    return Ok(());
                }
                let status = self.status()?;
                match status {
                    InvoiceStatus::Issued | InvoiceStatus::Paid => {}
                    InvoiceStatus::Draft => return Err(InvoiceError::StillDraft),
                    InvoiceStatus::Void => return Err(InvoiceError::Voided),
                    InvoiceStatus::Uncollectible => return Err(InvoiceError::Uncollectible),
                }
                if amount_cents.is_some_and(|amount| amount <= 0) {
                    return Err(InvoiceError::InvalidCreditAmount);
                }
                let remaining = self.remaining_to_credit_cents();
                if remaining == 0 {
                    return Err(InvoiceError::NothingLeftToCredit);
                }
                let amount_cents = amount_cents.unwrap_or(remaining);
                if amount_cents > remaining {
                    return Err(InvoiceError::CreditExceedsRemaining);
                }
                let event = InvoiceEvent::InvoiceCredited {
                    credit_note_id,
                    amount_cents,
                    at,
                };
                sink.write(event, self).await;
                if status == InvoiceStatus::Issued && self.amount_due_cents() == 0 {
                    sink.write(Self::paid(at, None), self).await;
                }
            }
            InvoiceCommand::MarkUncollectible { tenant } => {
                self.standard_owned_by(&tenant)?;
                match self.status()? {
                    InvoiceStatus::Issued => {}
                    InvoiceStatus::Draft => return Err(InvoiceError::StillDraft),
                    InvoiceStatus::Paid => return Err(InvoiceError::InvoiceAlreadyPaid),
                    InvoiceStatus::Void => return Err(InvoiceError::Voided),
                    InvoiceStatus::Uncollectible => return Err(InvoiceError::AlreadyUncollectible),
                }
                sink.write(InvoiceEvent::InvoiceMarkedUncollectible { at }, self)
                    .await;
            }
            InvoiceCommand::IssueAdjustment {
                id,
                tenant,
                customer_id,
                currency,
                document_type,
                original_invoice_id,
                original_number,
                amount_cents,
                reason,
                number,
                header,
            } => {
                if self.exists() {
                    return Err(InvoiceError::AlreadyExists);
                }
                if !document_type.is_adjustment() {
                    return Err(InvoiceError::NotAnAdjustmentType);
                }
                let reversed = Some(amount_cents)
                    .filter(|amount| (1..=MAX_AMOUNT_CENTS).contains(amount))
                    .and_then(i64::checked_neg)
                    .ok_or(InvoiceError::InvalidAdjustmentAmount)?;
                let reason = reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|reason| !reason.is_empty());
                if reason.is_some_and(|reason| reason.chars().count() > MAX_REASON_CHARS) {
                    return Err(InvoiceError::ReasonTooLong);
                }
                let original_number = parse_number(&original_number)?;
                let number = parse_number(&number)?;
                let line = InvoiceLine {
                    description: adjustment_description(document_type, &original_number, reason),
                    quantity: 1,
                    unit_amount_cents: reversed,
                    amount_cents: reversed,
                    period_start: None,
                    period_end: None,
                };
                let drafted = InvoiceEvent::InvoiceDrafted {
                    id,
                    tenant,
                    customer_id,
                    subscription_id: None,
                    currency,
                    document_type,
                    lines: vec![line],
                    subtotal_cents: reversed,
                    total_amount_cents: reversed,
                    period_start: None,
                    period_end: None,
                    original_invoice_id: Some(original_invoice_id),
                    at,
                };
                sink.write(drafted, self).await;
                // Nothing is due on a correction: it is due the day it is issued.
                let issued = InvoiceEvent::InvoiceIssued {
                    number,
                    issue_date: at,
                    due_date: at,
                    pdf_sha256: None,
                    pdf_renderer: None,
                    header: Some(DocumentHeader {
                        original_number: Some(original_number),
                        ..header
                    }),
                };
                sink.write(self.sealed(issued, services), self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: InvoiceEvent) {
        match event {
            InvoiceEvent::InvoiceDrafted {
                id,
                tenant,
                customer_id,
                subscription_id,
                currency,
                document_type,
                lines,
                subtotal_cents,
                total_amount_cents,
                period_start,
                period_end,
                original_invoice_id,
                at,
            } => {
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.subscription_id = subscription_id;
                self.currency = Some(currency);
                self.document_type = Some(document_type);
                self.status = Some(InvoiceStatus::Draft);
                self.lines = lines;
                self.subtotal_cents = subtotal_cents;
                self.total_amount_cents = total_amount_cents;
                self.period_start = period_start;
                self.period_end = period_end;
                self.original_invoice_id = original_invoice_id;
                self.created_at = Some(at);
            }
            InvoiceEvent::InvoiceIssued {
                number,
                issue_date,
                due_date,
                pdf_sha256,
                pdf_renderer,
                header,
            } => {
                self.status = Some(InvoiceStatus::Issued);
                self.number = Some(number);
                self.issue_date = Some(issue_date);
                self.due_date = Some(due_date);
                self.pdf_sha256 = pdf_sha256;
                self.pdf_renderer = pdf_renderer;
                self.header = header;
            }
            // Amounts are bounded when recorded, so saturating never changes one.
            InvoiceEvent::InvoicePaymentRecorded {
                payment_id,
                amount_cents,
                ..
            } => {
                self.amount_paid_cents = self.amount_paid_cents.saturating_add(amount_cents);
                self.payment_ids.push(payment_id);
            }
            InvoiceEvent::InvoicePaid {
                paid_date,
                pdf_sha256,
                ..
            } => {
                self.status = Some(InvoiceStatus::Paid);
                self.paid_date = Some(paid_date);
                self.paid_pdf_sha256 = pdf_sha256;
            }
            InvoiceEvent::InvoiceVoided {
                cancellation_id,
                amount_cents,
                ..
            } => {
                self.status = Some(InvoiceStatus::Void);
                if let Some(invoice_id) = cancellation_id {
                    self.adjust(invoice_id, DocumentType::Cancellation, amount_cents);
                }
            }
            InvoiceEvent::InvoiceCredited {
                credit_note_id,
                amount_cents,
                ..
            } => {
                self.adjust(credit_note_id, DocumentType::CreditNote, amount_cents);
            }
            InvoiceEvent::InvoiceMarkedUncollectible { .. } => {
                self.status = Some(InvoiceStatus::Uncollectible);
            }
        }
    }
}
