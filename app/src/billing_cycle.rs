//! The billing cycle: each period of a subscription is invoiced once (in advance: its flat
//! and per-seat components), the invoice issued with the next number and charged; at each
//! period's end the subscription renews; a failed charge is retried 1, 3 and 5 days after the
//! first failure; when the grace period ends unpaid the subscription is canceled and its
//! invoice written off; a subscription set to end at its period's end is canceled then.
//!
//! Exactly once, whatever runs twice, races or crashes: an invoice's id is derived from its
//! subscription and period, and `invoice_list`'s unique (subscription, period) index refuses a
//! second one in the append itself; renewals, charges and cancellations are commands whose
//! repeats change nothing; each step is part of a recorded flow (`flows.rs`) resumed after a
//! crash.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::AggregateError;
use domain::id::{InvoiceId, PrefixedId, SubscriptionId};
use domain::invoice::{
    DocumentType, Invoice, InvoiceCommand, InvoiceError, InvoiceStatus, LineInput,
};
use domain::plan::pricing::invoiced_components;
use domain::plan::PricingComponent;
use domain::subscription::{Subscription, SubscriptionCommand, SubscriptionError};
use domain::tenant::Tenant;
use projections::read_models::invoice_list::InvoiceListProjection;
use projections::ClaimKind;
use sha2::{Digest, Sha256};

use crate::charges::{ChargeOutcome, RETRY_AFTER_DAYS};
use crate::context::App;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::invoices::series_of;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::{command_error, is_claim};

/// The standard invoice of `subscription`'s period starting at `period_start`: the same id
/// whoever makes it, however often.
pub fn period_invoice_id(subscription: &SubscriptionId, period_start: DateTime<Utc>) -> InvoiceId {
    let digest = Sha256::digest(format!(
        "{subscription}:period:{}",
        period_start.timestamp_micros()
    ));
    let mut entropy = [0u8; 10];
    entropy.copy_from_slice(&digest[..10]);
    InvoiceId::derived(
        u64::try_from(period_start.timestamp_millis()).unwrap_or(0),
        &entropy,
    )
}

/// The lines of one period: the plan's flat components once, its per-seat ones times the
/// seats. (Usage is billed in arrears, from the credits issue on.)
fn period_lines(
    subscription: &Subscription,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
) -> Vec<LineInput> {
    let Some(plan) = &subscription.plan else {
        return Vec::new();
    };
    let line = |description: String, quantity: i64, unit_amount_cents: i64| LineInput {
        description,
        quantity,
        unit_amount_cents,
        period_start: Some(period_start),
        period_end: Some(period_end),
    };
    let mut lines: Vec<LineInput> = invoiced_components(&plan.pricing_data)
        .into_iter()
        .filter_map(|component| match component {
            PricingComponent::Flat { name, amount_cents } => Some(line(name, 1, amount_cents)),
            PricingComponent::PerSeat {
                name,
                unit_amount_cents,
            } => Some(line(
                name,
                i64::from(subscription.quantity.max(1)),
                unit_amount_cents,
            )),
            PricingComponent::Usage { .. } => None,
        })
        .collect();
    if lines.is_empty() {
        // A free plan still gets its (zero, at once paid) invoice: the period is on record.
        lines.push(line(plan.name.clone(), 1, 0));
    }
    lines
}

/// What the scheduler does for a subscription, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueWork {
    /// Its period ended: renew it (or cancel it, when it ends at its period's end).
    PeriodEnd { subscription_id: SubscriptionId },
    /// Charge its open invoice again.
    Retry { invoice_id: InvoiceId, attempt: u32 },
    /// Its grace ended unpaid: cancel it, write its invoice off.
    GraceEnd { subscription_id: SubscriptionId },
}

impl App {
    /// Invoices, issues and charges the subscription's period starting at `period_start`: a
    /// recorded flow.
    pub async fn bill_period(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<InvoiceId, AppError> {
        let input = FlowInput::BillPeriod {
            subscription_id: subscription_id.clone(),
            period_start,
        };
        let subscription_id = subscription_id.clone();
        self.in_flow(metadata, input, |app, metadata| async move {
            app.bill_in_flow(&metadata, &subscription_id, period_start)
                .await
        })
        .await
    }

    pub(crate) async fn bill_in_flow(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<InvoiceId, AppError> {
        let tenant = metadata.tenant().clone();
        let subscription = self
            .subscriptions
            .current(subscription_id.as_str())
            .await
            .map_err(command_error::<Subscription>)?;
        let period_end = match subscription.current_period_start {
            Some(start) if start == period_start => subscription.current_period_end,
            _ => None,
        }
        .ok_or_else(|| AppError::internal("Failed to bill", "not the current period"))?;
        let id = period_invoice_id(subscription_id, period_start);
        let plan = subscription
            .plan
            .as_ref()
            .ok_or_else(|| AppError::internal("Failed to bill", "no plan"))?;
        let draft = InvoiceCommand::CreateDraft {
            id: id.clone(),
            tenant: tenant.clone(),
            customer_id: subscription
                .customer_id
                .clone()
                .ok_or_else(|| AppError::internal("Failed to bill", "no customer"))?,
            subscription_id: Some(subscription_id.clone()),
            currency: plan.currency.as_str().to_owned(),
            lines: period_lines(&subscription, period_start, period_end),
            period_start: Some(period_start),
            period_end: Some(period_end),
        };
        match self.invoices.execute(id.as_str(), draft, metadata).await {
            Ok(_) => {}
            // Made by an earlier run, or a racing scheduler: the period is invoiced once.
            Err(AggregateError::UserError(InvoiceError::AlreadyExists)) => {}
            Err(e) if is_claim(&e, ClaimKind::PeriodInvoiced) => {}
            Err(e) => return Err(command_error::<Invoice>(e)),
        }
        let invoice = self
            .invoices
            .current(id.as_str())
            .await
            .map_err(command_error::<Invoice>)?;
        if let (Some(InvoiceStatus::Draft), Some(customer_id)) =
            (invoice.status, invoice.customer_id.as_ref())
        {
            let header = self.document_header(&tenant, customer_id).await?;
            let issue = |number: String| InvoiceCommand::Issue {
                tenant: tenant.clone(),
                number,
                due_date: None,
                header: header.clone(),
            };
            match self
                .with_next_number(
                    &tenant,
                    series_of(DocumentType::Standard),
                    issue,
                    &id,
                    metadata,
                )
                .await
            {
                Ok(_) => {}
                // Issued by a racing run meanwhile.
                Err(AppError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.charge_in_flow(metadata, &id, 1).await?;
        Ok(id)
    }

    /// The work that falls due for `tenant` next, with when; `None` when nothing is
    /// scheduled.
    pub async fn next_due(
        &self,
        tenant: &Tenant,
    ) -> Result<Option<(DateTime<Utc>, DueWork)>, AppError> {
        let mut next: Option<(DateTime<Utc>, DueWork)> = None;
        let mut consider = |at: DateTime<Utc>, work: DueWork| {
            if next.as_ref().is_none_or(|(earliest, _)| at < *earliest) {
                next = Some((at, work));
            }
        };
        let schedule =
            projections::read_models::billing_schedule::for_tenant(&self.pool, tenant).await?;
        if let Some((id, at)) = schedule.period_end {
            consider(
                at,
                DueWork::PeriodEnd {
                    subscription_id: parse(&id)?,
                },
            );
        }
        if let Some((id, at)) = schedule.grace_end {
            consider(
                at,
                DueWork::GraceEnd {
                    subscription_id: parse(&id)?,
                },
            );
        }
        for open in schedule.failed_invoices {
            let Some(after) = RETRY_AFTER_DAYS.get(open.failures as usize - 1) else {
                continue;
            };
            consider(
                open.first_failure + Duration::days(*after),
                DueWork::Retry {
                    invoice_id: parse(&open.invoice_id)?,
                    attempt: open.failures as u32 + 1,
                },
            );
        }
        Ok(next)
    }

    /// Does one piece of due work for `tenant`.
    pub async fn run_due(&self, tenant: &Tenant, work: DueWork) -> Result<(), AppError> {
        let metadata = CommandMetadata::acting_as(Principal {
            tenant: tenant.clone(),
            key_id: "scheduler".into(),
            session: None,
        });
        match work {
            DueWork::PeriodEnd { subscription_id } => {
                let subscription = self
                    .subscriptions
                    .current(subscription_id.as_str())
                    .await
                    .map_err(command_error::<Subscription>)?;
                let Some(period_end) = subscription.current_period_end else {
                    return Ok(());
                };
                let input = FlowInput::EndPeriod {
                    subscription_id: subscription_id.clone(),
                    period_end,
                };
                self.in_flow(&metadata, input, |app, metadata| async move {
                    app.end_period(&metadata, &subscription_id, period_end)
                        .await
                })
                .await
            }
            DueWork::Retry {
                invoice_id,
                attempt,
            } => self
                .charge_invoice(&metadata, &invoice_id, attempt)
                .await
                .map(|_: ChargeOutcome| ()),
            DueWork::GraceEnd { subscription_id } => {
                self.end_grace(&metadata, &subscription_id).await
            }
        }
    }

    /// Renews a subscription whose period ended at `period_end` and bills the new period, or
    /// cancels one set to end then: a recorded flow, so a renewal is never left unbilled.
    pub(crate) async fn end_period(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
        period_end: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        let subscription = self
            .subscriptions
            .current(subscription_id.as_str())
            .await
            .map_err(command_error::<Subscription>)?;
        if subscription.cancel_at_period_end {
            return self
                .cancel_subscription_by_id_at_period_end(metadata, subscription_id)
                .await;
        }
        let renewed = self
            .subscriptions
            .execute(
                subscription_id.as_str(),
                SubscriptionCommand::RenewSubscription {
                    tenant,
                    period_start: period_end,
                },
                metadata,
            )
            .await;
        match renewed {
            Ok(_) => {}
            // Canceled meanwhile: nothing to renew.
            Err(AggregateError::UserError(SubscriptionError::Canceled)) => return Ok(()),
            Err(e) => return Err(command_error::<Subscription>(e)),
        }
        self.bill_in_flow(metadata, subscription_id, period_end)
            .await?;
        Ok(())
    }

    /// Cancels the subscription (and unlinks its card) as its period ends.
    async fn cancel_subscription_by_id_at_period_end(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
    ) -> Result<(), AppError> {
        match self
            .cancel_subscription(metadata, subscription_id.as_str())
            .await
        {
            Ok(_) | Err(AppError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Cancels a subscription whose grace ended unpaid, and writes its open invoices off.
    async fn end_grace(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        let open =
            InvoiceListProjection::open_of_subscription(&self.pool, subscription_id.as_str())
                .await?;
        for invoice in open {
            let marked = self
                .invoices
                .execute(
                    &invoice,
                    InvoiceCommand::MarkUncollectible {
                        tenant: tenant.clone(),
                    },
                    metadata,
                )
                .await;
            if let Err(e) = marked {
                tracing::debug!(error = %e, "an open invoice closed meanwhile");
            }
        }
        match self
            .cancel_subscription(metadata, subscription_id.as_str())
            .await
        {
            Ok(_) | Err(AppError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves the caller's test clock to `to`, doing on the way, in time order and each at its
    /// own time, everything that falls due for its tenant. Answers its new now.
    pub async fn advance_test_clock(
        &self,
        principal: &Principal,
        to: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, AppError> {
        let now = self.test_clock(principal)?;
        if to < now {
            return Err(AppError::invalid(crate::test_clock::BACKWARDS));
        }
        let tenant = principal.tenant.clone();
        // Bounded, so that a schedule that keeps making work due cannot spin forever.
        for _ in 0..100_000 {
            let Some((at, work)) = self.next_due(&tenant).await? else {
                break;
            };
            if at > to {
                break;
            }
            if at > self.clock.now_for(&tenant) {
                self.move_test_clock(principal, at).await?;
            }
            self.run_due(&tenant, work).await?;
        }
        self.move_test_clock(principal, to).await
    }
}

fn parse<I: PrefixedId>(id: &str) -> Result<I, AppError> {
    I::parse(id).map_err(|e| AppError::internal("Internal server error", e))
}
