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

use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use domain::id::{InvoiceId, PrefixedId, SubscriptionId};
use domain::invoice::{
    DocumentType, Invoice, InvoiceCommand, InvoiceError, InvoiceStatus, LineInput,
};
use domain::plan::pricing::invoiced_components;
use domain::plan::PricingComponent;
use domain::subscription::{Subscription, SubscriptionCommand, SubscriptionError};
use domain::tenant::Tenant;
use projections::read_models::credit_balances::CreditBalancesProjection;
use projections::read_models::invoice_list::InvoiceListProjection;
use projections::ClaimKind;
use sha2::{Digest, Sha256};

use crate::charges::JustCommanded;
use crate::context::App;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::principal::CommandMetadata;
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
/// seats. (Usage is billed in arrears: [`App::overage_lines`].)
pub(crate) fn period_lines(
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

/// The most a line's quantity may be; more units are billed as one line of their total.
const MAX_LINE_QUANTITY: i64 = 1_000_000;

impl App {
    /// The usage of the period before `period_start` that credits did not cover, for each
    /// `usage` component of the plan: billed in arrears on the next period's invoice. Usage
    /// counts for the period it was recorded in.
    async fn overage_lines(
        &self,
        tenant: &Tenant,
        subscription: &Subscription,
        subscription_id: &SubscriptionId,
        period_start: DateTime<Utc>,
    ) -> Result<Vec<LineInput>, AppError> {
        let (Some(plan), Some(customer_id)) = (&subscription.plan, &subscription.customer_id)
        else {
            return Ok(Vec::new());
        };
        let metered: Vec<(String, String, i64)> = invoiced_components(&plan.pricing_data)
            .into_iter()
            .filter_map(|component| match component {
                PricingComponent::Usage {
                    name,
                    feature_slug,
                    unit_amount_cents,
                } => Some((name, feature_slug, unit_amount_cents)),
                _ => None,
            })
            .collect();
        if metered.is_empty() {
            return Ok(Vec::new());
        }
        let Some(previous) = InvoiceListProjection::previous_period_start(
            &self.pool,
            subscription_id.as_str(),
            period_start,
        )
        .await?
        else {
            return Ok(Vec::new());
        };
        let mut lines = Vec::new();
        for (name, feature_slug, unit_amount_cents) in metered {
            let units = CreditBalancesProjection::overage_units(
                &self.pool,
                tenant,
                customer_id.as_str(),
                &feature_slug,
                previous,
                period_start,
            )
            .await?;
            if units == 0 {
                continue;
            }
            let (quantity, unit_amount_cents, description) = if units <= MAX_LINE_QUANTITY {
                (
                    units,
                    unit_amount_cents,
                    format!("{name} (usage beyond credits)"),
                )
            } else {
                (
                    1,
                    units.saturating_mul(unit_amount_cents),
                    format!("{name} (usage beyond credits, {units} units)"),
                )
            };
            lines.push(LineInput {
                description,
                quantity,
                unit_amount_cents,
                period_start: Some(previous),
                period_end: Some(period_start),
            });
        }
        Ok(lines)
    }

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
            app.bill_in_flow(&metadata, &subscription_id, period_start, None)
                .await
        })
        .await
    }

    /// Bills the period; `renewed` is the subscription as this flow's renewal just left it,
    /// when there was one (read otherwise).
    pub(crate) async fn bill_in_flow(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
        period_start: DateTime<Utc>,
        renewed: Option<Subscription>,
    ) -> Result<InvoiceId, AppError> {
        let tenant = metadata.tenant().clone();
        let subscription = self
            .subscriptions
            .known_or_current(subscription_id.as_str(), renewed)
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
            lines: {
                let mut lines = period_lines(&subscription, period_start, period_end);
                lines.extend(
                    self.overage_lines(&tenant, &subscription, subscription_id, period_start)
                        .await?,
                );
                lines
            },
            period_start: Some(period_start),
            period_end: Some(period_end),
        };
        // The id is the period's: new unless an earlier or racing run made it, and then the
        // append collides and the retry reads it (a resumed run reads first).
        let drafted = match self
            .invoices
            .execute_new(id.as_str(), draft, metadata)
            .await
        {
            Ok(invoice) => Some(invoice),
            // Made by an earlier run, or a racing scheduler: the period is invoiced once.
            Err(AggregateError::UserError(InvoiceError::AlreadyExists)) => None,
            Err(e) if is_claim(&e, ClaimKind::PeriodInvoiced) => None,
            Err(e) => return Err(command_error::<Invoice>(e)),
        };
        let invoice = self
            .invoices
            .known_or_current(id.as_str(), drafted)
            .await
            .map_err(command_error::<Invoice>)?;
        // The invoice as this flow's own commands left it, for the charge below; none when
        // another run got there first (the charge reads it then).
        let mut charged_as =
            (invoice.status != Some(InvoiceStatus::Draft)).then(|| invoice.clone());
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
                    &self.series_of(&tenant, DocumentType::Standard).await?,
                    issue,
                    &id,
                    metadata,
                    Some(&invoice),
                )
                .await
            {
                Ok(issued) => charged_as = Some(issued),
                // Issued by a racing run meanwhile.
                Err(AppError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // The period's credits, before its charge: they are the period's, paid or not yet.
        self.grant_period_allowances(metadata, &subscription, period_start, period_end)
            .await?;
        let known = JustCommanded {
            invoice: charged_as,
            subscription: Some(subscription),
        };
        self.charge_with(metadata, &id, 1, known).await?;
        Ok(id)
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
        let renewed = match renewed {
            Ok(renewed) => renewed,
            // Canceled meanwhile: nothing to renew.
            Err(AggregateError::UserError(SubscriptionError::Canceled)) => return Ok(()),
            Err(e) => return Err(command_error::<Subscription>(e)),
        };
        self.bill_in_flow(metadata, subscription_id, period_end, Some(renewed))
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
    pub(crate) async fn end_grace(
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
}
