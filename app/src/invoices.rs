//! Invoices: drafts (made by hand here, or by the billing cycle), issued with the next number
//! of their series, voided with a cancellation document, corrected by credit notes; and the
//! proof that each series of numbers is gapless.
//!
//! A number is claimed by the event that issues its document (`document_numbers`): the next
//! one is read, and an append that finds it taken (another issue won it) tries the one after.
//! Inside one process issues of one series take turns, so they seldom collide at all.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError};
use domain::id::{CustomerId, InvoiceId};
use domain::invoice::{DocumentType, Invoice, InvoiceCommand, InvoiceStatus, LineInput};
use domain::tenant::Tenant;
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::document_numbers::{
    format_number, DocumentNumbersProjection, SeriesView,
};
use projections::read_models::invoice_list::{InvoiceFilter, InvoiceListProjection, InvoiceView};
use projections::ClaimKind;

use crate::context::App;
use crate::customers::NOT_FOUND as CUSTOMER_NOT_FOUND;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::ids::{parse_id, required_id};
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::{command_error, is_claim};

pub const NOT_FOUND: &str = "Invoice not found";
/// How often an issue tries the next number when others keep taking it first.
const MAX_NUMBER_ATTEMPTS: u32 = 1000;

/// A line as the caller gave it; missing fields are refused by name.
#[derive(Debug, Clone, Default)]
pub struct NewLine {
    pub description: Option<String>,
    /// One when not given.
    pub quantity: Option<i64>,
    pub unit_amount_cents: Option<i64>,
}

/// What a hand-made draft takes.
#[derive(Debug, Clone, Default)]
pub struct NewInvoice {
    pub customer_id: Option<String>,
    pub currency: Option<String>,
    pub lines: Option<Vec<NewLine>>,
}

impl App {
    /// A draft invoice of the tenant's customer, with the lines given.
    pub async fn create_invoice(
        &self,
        metadata: &CommandMetadata,
        new: NewInvoice,
    ) -> Result<InvoiceView, AppError> {
        let tenant = metadata.tenant().clone();
        let customer_id: CustomerId = required_id(new.customer_id.as_deref(), "customerId")?;
        let lines = new
            .lines
            .ok_or_else(|| AppError::invalid("lines is required"))?
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                let unit_amount_cents = line.unit_amount_cents.ok_or_else(|| {
                    AppError::invalid(format!("Line {}: unitAmountCents is required", index + 1))
                })?;
                Ok(LineInput {
                    description: line.description.unwrap_or_default(),
                    quantity: line.quantity.unwrap_or(1),
                    unit_amount_cents,
                    period_start: None,
                    period_end: None,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        CustomerListProjection::get(&self.pool, &tenant, customer_id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        let id: InvoiceId = metadata.new_id("invoice");
        let command = InvoiceCommand::CreateDraft {
            id: id.clone(),
            tenant: tenant.clone(),
            customer_id,
            subscription_id: None,
            currency: new.currency.unwrap_or_default(),
            lines,
            period_start: None,
            period_end: None,
        };
        self.invoices
            .execute_new(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<Invoice>)?;
        self.invoice_view(&tenant, &id).await
    }

    /// Issues draft `id` with the next number of its series.
    pub async fn finalize_invoice(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<InvoiceView, AppError> {
        let id: InvoiceId = parse_id(id)?;
        let tenant = metadata.tenant().clone();
        let invoice = self.owned_invoice(&tenant, &id).await?;
        let document_type = invoice.document_type.unwrap_or(DocumentType::Standard);
        if let (Some(InvoiceStatus::Draft), Some(customer_id)) =
            (invoice.status, invoice.customer_id.as_ref())
        {
            let header = self.document_header(&tenant, customer_id).await?;
            let series = self.series_of(&tenant, document_type).await?;
            self.with_next_number(
                &tenant,
                &series,
                |number| InvoiceCommand::Issue {
                    tenant: tenant.clone(),
                    number,
                    due_date: None,
                    header: header.clone(),
                },
                &id,
                metadata,
                Some(&invoice),
            )
            .await?;
        } else {
            // Issued already (or void): the aggregate's refusal says which.
            self.invoices
                .execute(
                    id.as_str(),
                    InvoiceCommand::Issue {
                        tenant: tenant.clone(),
                        number: format_number(&self.series_of(&tenant, document_type).await?, 1),
                        due_date: None,
                        header: Default::default(),
                    },
                    metadata,
                )
                .await
                .map_err(command_error::<Invoice>)?;
        }
        self.invoice_view(&tenant, &id).await
    }

    /// Runs the command `issue` makes with the next number of `series` on invoice `id`,
    /// trying the following number while others take it first. Given the invoice as it
    /// stands (`draft`), the issue renders its document with the number it will likely get
    /// while it waits for the series' turn (`document_series.rs`).
    pub(crate) async fn with_next_number(
        &self,
        tenant: &Tenant,
        series: &str,
        issue: impl Fn(String) -> InvoiceCommand,
        id: &InvoiceId,
        metadata: &CommandMetadata,
        draft: Option<&Invoice>,
    ) -> Result<Invoice, AppError> {
        let key = format!("{}:{series}", tenant.key());
        let (place, likely) = self.numbering.join(&key);
        let turn = self.numbering.turn(&key);
        let _turn = match (likely, draft) {
            // The turn is asked for first, so the render does not cost the issue its place.
            (Some(number), Some(draft)) => {
                let ahead = self.render_ahead(draft, issue(format_number(series, number)));
                tokio::join!(turn, ahead).0
            }
            _ => turn.await,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = match self.numbering.last_claimed(&key) {
                Some(last) => last,
                None => DocumentNumbersProjection::last(&self.pool, tenant, series).await?,
            };
            let number = format_number(series, last + 1);
            match self
                .invoices
                .execute(id.as_str(), issue(number.clone()), metadata)
                .await
            {
                Ok(invoice) => {
                    // Claimed only if this command issued it: one issued before keeps the
                    // number it had, and the series' last is then not known here.
                    let claimed = invoice.number.as_deref() == Some(number.as_str());
                    place.leave(claimed.then_some(last + 1));
                    return Ok(invoice);
                }
                Err(e)
                    if is_claim(&e, ClaimKind::DocumentNumber) && attempt < MAX_NUMBER_ATTEMPTS =>
                {
                    // Another instance took it (or its predecessor is not committed yet).
                    self.numbering.forget(&key);
                    tokio::time::sleep(std::time::Duration::from_millis(rand::random::<u64>() % 5))
                        .await;
                }
                Err(e) => {
                    place.leave(None);
                    return Err(command_error::<Invoice>(e));
                }
            }
        }
    }

    /// Runs the issue `command` on a copy of `draft`, ahead of its turn, for its document's
    /// digest alone: the fingerprint remembers it (`document_rendering.rs`), and the issue in
    /// the turn finds it if its number and date came out as guessed. What the copy decides
    /// is thrown away.
    pub(crate) async fn render_ahead(&self, draft: &Invoice, command: InvoiceCommand) {
        let mut copy = draft.clone();
        let sink = EventSink::default();
        if let Err(e) = copy.handle(command, &self.invoices.services, &sink).await {
            tracing::debug!(error = %e, "an issue rendered ahead would be refused");
        }
    }

    /// Voids invoice `id`: a draft without a number; an issued, unpaid one with a
    /// cancellation document (its own `CAN-` number) that reverses what was left. A paid
    /// invoice is refused: a credit note corrects it. The void and the cancellation are one
    /// recorded flow (`flows.rs`): cut between them, the cancellation is issued on resume.
    pub async fn void_invoice(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<InvoiceView, AppError> {
        let id: InvoiceId = parse_id(id)?;
        let tenant = metadata.tenant().clone();
        let invoice = self.owned_invoice(&tenant, &id).await?;
        if invoice.status == Some(InvoiceStatus::Draft) {
            self.invoices
                .execute(
                    id.as_str(),
                    InvoiceCommand::Void {
                        tenant: tenant.clone(),
                        cancellation_id: None,
                    },
                    metadata,
                )
                .await
                .map_err(command_error::<Invoice>)?;
            return self.invoice_view(&tenant, &id).await;
        }
        let input = FlowInput::AdjustInvoice {
            invoice_id: id.clone(),
            document_type: DocumentType::Cancellation,
            amount_cents: None,
            reason: None,
        };
        self.in_flow(metadata, input, |app, metadata| async move {
            app.adjust(&metadata, &id, DocumentType::Cancellation, None, None)
                .await
        })
        .await
    }

    /// Issues a credit note for `amount_cents` of invoice `id` (all that is left when none),
    /// never more than is left to credit. One recorded flow with the original's record of it.
    pub async fn credit_invoice(
        &self,
        metadata: &CommandMetadata,
        id: &str,
        amount_cents: Option<i64>,
        reason: Option<String>,
    ) -> Result<InvoiceView, AppError> {
        let id: InvoiceId = parse_id(id)?;
        // A credit note says why it corrects the invoice: the document prints it.
        if reason
            .as_deref()
            .is_none_or(|reason| reason.trim().is_empty())
        {
            return Err(AppError::invalid("reason is required"));
        }
        let tenant = metadata.tenant().clone();
        self.owned_invoice(&tenant, &id).await?;
        let input = FlowInput::AdjustInvoice {
            invoice_id: id.clone(),
            document_type: DocumentType::CreditNote,
            amount_cents,
            reason: reason.clone(),
        };
        self.in_flow(metadata, input, |app, metadata| async move {
            app.adjust(
                &metadata,
                &id,
                DocumentType::CreditNote,
                amount_cents,
                reason,
            )
            .await
        })
        .await
    }

    /// The original records the correction (which checks what is left), then the correcting
    /// document is issued with the amount the original recorded. Returns the document.
    pub(crate) async fn adjust(
        &self,
        metadata: &CommandMetadata,
        id: &InvoiceId,
        document_type: DocumentType,
        amount_cents: Option<i64>,
        reason: Option<String>,
    ) -> Result<InvoiceView, AppError> {
        let tenant = metadata.tenant().clone();
        let adjustment_id: InvoiceId = metadata.new_id(document_type.as_str());
        let command = match document_type {
            DocumentType::CreditNote => InvoiceCommand::Credit {
                tenant: tenant.clone(),
                credit_note_id: adjustment_id.clone(),
                amount_cents,
            },
            _ => InvoiceCommand::Void {
                tenant: tenant.clone(),
                cancellation_id: Some(adjustment_id.clone()),
            },
        };
        let original = self
            .invoices
            .execute(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<Invoice>)?;
        let recorded = original
            .adjustments
            .iter()
            .find(|adjustment| adjustment.invoice_id == adjustment_id)
            .ok_or_else(|| AppError::internal("Failed to adjust invoice", "no adjustment"))?;
        let incomplete = || AppError::internal("Failed to adjust invoice", "incomplete invoice");
        let customer_id = original.customer_id.clone().ok_or_else(incomplete)?;
        let currency = original.currency.clone().ok_or_else(incomplete)?;
        let header = self.document_header(&tenant, &customer_id).await?;
        let issue = |number: String| InvoiceCommand::IssueAdjustment {
            id: adjustment_id.clone(),
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            currency: currency.clone(),
            document_type,
            original_invoice_id: id.clone(),
            original_number: original.number.clone().unwrap_or_default(),
            amount_cents: recorded.amount_cents,
            reason: reason.clone(),
            number,
            header: header.clone(),
        };
        let already = self.invoices.current(adjustment_id.as_str()).await;
        if !matches!(already, Ok(ref document) if document.exists()) {
            let series = self.series_of(&tenant, document_type).await?;
            self.with_next_number(&tenant, &series, issue, &adjustment_id, metadata, None)
                .await?;
        }
        // A credit note on what was paid gives the money back.
        if document_type == DocumentType::CreditNote && original.amount_paid_cents > 0 {
            self.refund_for_credit_note(metadata, &original, &adjustment_id, recorded.amount_cents)
                .await?;
        }
        self.invoice_view(&tenant, &adjustment_id).await
    }

    /// The tenant's invoice `id`.
    pub async fn invoice(&self, principal: &Principal, id: &str) -> Result<InvoiceView, AppError> {
        let id: InvoiceId = parse_id(id).map_err(|_| AppError::not_found(NOT_FOUND))?;
        self.invoice_view(&principal.tenant, &id).await
    }

    /// The tenant's invoices that match `filter`, newest first, a page at a time.
    pub async fn list_invoices(
        &self,
        principal: &Principal,
        filter: &InvoiceFilter,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<InvoiceView>, bool), AppError> {
        if let Some(after) = starting_after {
            parse_id::<InvoiceId>(after)?;
        }
        Ok(InvoiceListProjection::list(
            &self.pool,
            &principal.tenant,
            filter,
            starting_after,
            limit,
        )
        .await?)
    }

    /// Each of the tenant's number series: first, last and how many; gapless when the count
    /// is the last.
    pub async fn invoice_numbering(
        &self,
        principal: &Principal,
    ) -> Result<Vec<SeriesView>, AppError> {
        Ok(DocumentNumbersProjection::series(&self.pool, &principal.tenant).await?)
    }

    async fn invoice_view(&self, tenant: &Tenant, id: &InvoiceId) -> Result<InvoiceView, AppError> {
        InvoiceListProjection::get(&self.pool, tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(NOT_FOUND))
    }

    /// Invoice `id` as commands see it, when it is the tenant's.
    async fn owned_invoice(&self, tenant: &Tenant, id: &InvoiceId) -> Result<Invoice, AppError> {
        let invoice = self
            .invoices
            .current(id.as_str())
            .await
            .map_err(|e: AggregateError<_>| command_error::<Invoice>(e))?;
        if invoice.tenant.as_ref() != Some(tenant) {
            return Err(AppError::not_found(NOT_FOUND));
        }
        Ok(invoice)
    }
}
