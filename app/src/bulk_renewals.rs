//! Renewals in bulk. When many subscriptions' periods end together (the first of a month, a
//! cohort of trials, a test-clock advance over them), they are renewed, invoiced, issued and
//! charged a batch at a time, in a few statements per batch instead of some two dozen per
//! renewal: a renewal one by one was mostly the fixed cost of its statements.
//!
//! The first write of a batch holds, for each of its renewals, the subscription's renewal, its
//! period's invoice drafted and issued with the next number of the series, and its charge
//! recorded `pending`: one statement (`EventLog::append_atomically`), so a process that dies
//! leaves all of it or none of it. The provider is then asked for each charge, the payment's
//! id its idempotency key. The second write holds each succeeded charge's settlement, its
//! invoice paid and its subscription paid up: one statement again. A process that dies between
//! the two leaves charges pending, as a renewal one by one that died after recording its
//! charge does: the scheduler settles pending charges, and asking the provider again with the
//! same key answers the first charge, never a second one. A declined charge is settled and
//! applied the usual way (past due, retries), one at a time: it is the rare case.
//!
//! Only the common case is done in bulk: an active subscription not set to end, with a card
//! on file, whose plan has no usage to bill in arrears and no credits to grant; one per
//! customer in a batch (two charges of one customer would write the customer's row of
//! `payment_totals` twice in one statement). The rest, a batch the database refuses (another
//! writer got to one of its aggregates or numbers first), and a window of fewer than
//! [`BULK_AT_LEAST`] period ends, run one renewal at a time (`billing_cycle.rs`), with the
//! same events: the outcome is the same either way.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::id::{InvoiceId, PaymentId, SubscriptionId};
use domain::invoice::{DocumentHeader, DocumentType, Invoice, InvoiceCommand, InvoiceStatus};
use domain::payment::{Payment, PaymentCommand, PaymentKind, SettlementOutcome};
use domain::payment_method::PaymentMethod;
use domain::plan::pricing::invoiced_components;
use domain::plan::{CreditAllowance, PricingComponent};
use domain::subscription::{PlanSnapshot, Subscription, SubscriptionCommand, SubscriptionStatus};
use domain::tenant::Tenant;
use futures::stream::{self, StreamExt};
use projections::event_store::AtomicAppendError;
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::document_numbers::{format_number, DocumentNumbersProjection};
use projections::read_models::plan_list::PlanListProjection;
use projections::tables::{merchants, provider_links};

use crate::billing_cycle::{period_invoice_id, period_lines};
use crate::charges::{charge_at, charge_id};
use crate::command_runner::{Decided, Loaded};
use crate::context::App;
use crate::due_work::{piece_key, Due, DueWork};
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::invoice_documents::header_of;
use crate::pieces_in_flight::PieceHold;
use crate::principal::{CommandMetadata, Principal};

/// Fewer period ends than this in one window run one by one: a batch would save little.
pub const BULK_AT_LEAST: usize = 8;
/// Renewals in one batch at most: its first write holds four events of each (and their
/// read-model rows), well within one statement's limits.
const BATCH: usize = 64;
/// Batches in flight at once: one holds the series' turn while the others read, render their
/// documents ahead and ask the provider.
const BATCHES_AT_ONCE: usize = 4;
/// A crash test's name for a batch's writes (`flows::DeathPlan`): it may die after the first
/// (renewed, issued, charges pending) or the second (charges settled).
pub const BULK_RENEWAL: &str = "renewal.bulk";

/// A period end taken for a batch, held (`pieces_in_flight.rs`) so that no other run in this
/// process renews it meanwhile.
struct Taken {
    piece: Due,
    subscription_id: SubscriptionId,
    period_end: DateTime<Utc>,
    /// Taken out by the batch's flow, which keeps it to its end.
    hold: Option<PieceHold>,
}

/// A renewal of a batch, as decided so far.
struct Renewal {
    taken: Taken,
    subscription: Decided<Subscription>,
    method: PaymentMethod,
    /// Merchant and customer as the issued document names them.
    header: DocumentHeader,
    invoice_id: InvoiceId,
    /// Drafted, then issued.
    invoice: Decided<Invoice>,
    payment: Option<(PaymentId, Decided<Payment>)>,
}

/// Why a batch's first write did not happen.
enum Unwritten {
    /// Nothing was written (refused by the rules or the database, or a read failed): the
    /// pieces run one by one.
    Refused(Vec<Taken>),
    /// Whether it was written is not known (the connection failed).
    Unknown(AppError),
}

/// What a batch came to: the pieces it leaves to run one by one, how many it renewed, and
/// the first failure of a charge it settled one by one.
#[derive(Default)]
pub(crate) struct BatchOutcome {
    pub(crate) left: Vec<Due>,
    pub(crate) renewed: usize,
    pub(crate) failure: Option<AppError>,
}

impl BatchOutcome {
    fn add(&mut self, other: BatchOutcome) {
        self.left.extend(other.left);
        self.renewed += other.renewed;
        if self.failure.is_none() {
            self.failure = other.failure;
        }
    }

    fn leaving(taken: impl IntoIterator<Item = Taken>) -> Self {
        BatchOutcome {
            left: taken.into_iter().map(|t| t.piece).collect(),
            ..BatchOutcome::default()
        }
    }
}

/// Whether subscriptions on `plan` bill usage in arrears (read per renewal, one by one).
fn bills_usage(plan: &PlanSnapshot) -> bool {
    invoiced_components(&plan.pricing_data)
        .iter()
        .any(|component| matches!(component, PricingComponent::Usage { .. }))
}

impl App {
    /// Renews in bulk what it can of `pieces` (see the module's comment). A period end that
    /// another run in this process is doing is left to it.
    pub(crate) async fn renew_in_bulk(&self, tenant: &Tenant, pieces: Vec<Due>) -> BatchOutcome {
        let period_ends = pieces
            .iter()
            .filter(|piece| matches!(piece.work, DueWork::PeriodEnd { .. }))
            .count();
        if period_ends < BULK_AT_LEAST {
            return BatchOutcome {
                left: pieces,
                ..BatchOutcome::default()
            };
        }
        let mut outcome = BatchOutcome::default();
        let mut taken = Vec::new();
        for piece in pieces {
            let DueWork::PeriodEnd {
                subscription_id,
                period_end,
            } = &piece.work
            else {
                outcome.left.push(piece);
                continue;
            };
            let (subscription_id, period_end) = (subscription_id.clone(), *period_end);
            if let Ok(hold) = self
                .pieces_in_flight
                .try_begin(piece_key(tenant, &piece.work))
            {
                taken.push(Taken {
                    piece,
                    subscription_id,
                    period_end,
                    hold: Some(hold),
                });
            }
        }
        // As many batches as run at once, unless that makes them small: a window of a few
        // hundred period ends (a test-clock advance takes a second's at a time) still keeps
        // every core busy.
        let size = taken
            .len()
            .div_ceil(BATCHES_AT_ONCE)
            .clamp(BULK_AT_LEAST, BATCH);
        let mut batches = Vec::new();
        while !taken.is_empty() {
            let rest = taken.split_off(taken.len().min(size));
            batches.push(std::mem::replace(&mut taken, rest));
        }
        // Each batch on a task of its own, so that their renders use every core.
        let runs: Vec<_> = stream::iter(batches)
            .map(|batch| {
                let app = self.clone();
                let tenant = tenant.clone();
                tokio::spawn(async move { app.renew_batch(&tenant, batch).await })
            })
            .buffer_unordered(BATCHES_AT_ONCE)
            .collect()
            .await;
        for run in runs {
            match run {
                Ok(batch) => outcome.add(batch),
                // Where a crash test's death plan ended it: die along with it.
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(join) => {
                    if outcome.failure.is_none() {
                        outcome.failure = Some(AppError::internal("Internal server error", join));
                    }
                }
            }
        }
        outcome
    }

    /// Renews, bills and charges one batch; whatever it cannot do in bulk it leaves.
    async fn renew_batch(&self, tenant: &Tenant, batch: Vec<Taken>) -> BatchOutcome {
        let metadata = CommandMetadata::acting_as(Principal {
            tenant: tenant.clone(),
            key_id: "scheduler".into(),
            session: None,
        });
        // The flow is recorded first, so that every event of the batch carries it.
        let input = FlowInput::RenewInBulk {
            invoice_ids: batch
                .iter()
                .map(|t| period_invoice_id(&t.subscription_id, t.period_end))
                .collect(),
        };
        let written = self
            .in_flow(&metadata, input, |app, metadata| async move {
                app.run_batch(&metadata, batch).await
            })
            .await;
        written.unwrap_or_else(|e| BatchOutcome {
            failure: Some(e),
            ..BatchOutcome::default()
        })
    }

    /// The batch as a recorded flow (`flows.rs`): its reads, its two writes and the
    /// provider's answers between them. One cut after the first write is resumed, and its
    /// pending charges completed, before a test-clock advance renews those subscriptions
    /// again. Every period end stays held until its charge is settled, so an advance that
    /// waits for the pieces in flight finds a declined one already past due.
    async fn run_batch(
        &self,
        metadata: &CommandMetadata,
        mut batch: Vec<Taken>,
    ) -> Result<BatchOutcome, AppError> {
        let _holds: Vec<PieceHold> = batch.iter_mut().filter_map(|t| t.hold.take()).collect();
        let (renewals, mut outcome) = match self.decide_renewals(metadata, batch).await {
            Ok(decided) => decided,
            Err((e, taken)) => {
                tracing::debug!(error = %e, "renewals in bulk: left to run one by one");
                return Ok(BatchOutcome::leaving(taken));
            }
        };
        if renewals.is_empty() {
            return Ok(outcome);
        }
        let (renewals, refused) = match self.issue_and_record(metadata, renewals).await {
            Ok(issued) => issued,
            Err(Unwritten::Refused(taken)) => {
                outcome.add(BatchOutcome::leaving(taken));
                return Ok(outcome);
            }
            // Written or not: the flow is let go, and its resumption completes any charge
            // the write recorded.
            Err(Unwritten::Unknown(e)) => return Err(e),
        };
        // Left out by the rules (none was expected to be): one by one says why.
        outcome.add(BatchOutcome::leaving(refused));
        if let Some(flow) = &metadata.flow {
            flow.committed();
        }
        outcome.renewed += renewals.len();
        // Anything but a clean end leaves the flow to be resumed: a charge may be pending.
        self.charge_renewals(metadata, renewals)
            .await
            .map_err(|e| match e {
                AppError::Internal(_) => e,
                other => AppError::internal("Failed to settle renewals' charges", other),
            })?;
        Ok(outcome)
    }

    /// Reads what the batch's renewals need, each kind in one query, and decides each
    /// renewal and its draft. Answers the renewals decided, and the pieces left to run one by
    /// one; or, when a read fails, every piece.
    async fn decide_renewals(
        &self,
        metadata: &CommandMetadata,
        batch: Vec<Taken>,
    ) -> Result<(Vec<Renewal>, BatchOutcome), (AppError, Vec<Taken>)> {
        let tenant = metadata.tenant();
        macro_rules! read {
            ($read:expr) => {
                match $read {
                    Ok(read) => read,
                    Err(e) => {
                        return Err((AppError::internal("Failed to renew", e), batch));
                    }
                }
            };
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|t| t.subscription_id.to_string())
            .collect();
        let mut subscriptions = read!(self.subscriptions.load_many(&ids).await);
        let method_ids: Vec<String> = subscriptions
            .values()
            .filter_map(|s| s.aggregate.payment_method_id.as_ref())
            .map(|id| id.to_string())
            .collect();
        let mut methods = read!(self.payment_methods.load_many(&method_ids).await);
        let customer_ids: Vec<String> = subscriptions
            .values()
            .filter_map(|s| s.aggregate.customer_id.as_ref())
            .map(|id| id.to_string())
            .collect();
        let customers: HashMap<String, _> =
            read!(CustomerListProjection::get_many(&self.pool, tenant, &customer_ids).await)
                .into_iter()
                .map(|customer| (customer.id.to_string(), customer))
                .collect();
        let merchant_name =
            read!(merchants::name(&self.pool, &tenant.merchant_id).await).unwrap_or_default();
        let mut plans_with_credits = HashSet::new();
        let plan_ids: HashSet<String> = subscriptions
            .values()
            .filter_map(|s| s.aggregate.plan.as_ref())
            .map(|plan| plan.plan_id.to_string())
            .collect();
        for plan_id in plan_ids {
            let plan = read!(PlanListProjection::get(&self.pool, tenant, &plan_id).await);
            let allowances: Vec<CreditAllowance> = plan
                .map(|plan| serde_json::from_value(plan.credits).unwrap_or_default())
                .unwrap_or_default();
            if !allowances.is_empty() {
                plans_with_credits.insert(plan_id);
            }
        }

        let mut outcome = BatchOutcome::default();
        let mut renewals = Vec::new();
        let mut customers_in_batch = HashSet::new();
        for taken in batch {
            let Some(loaded) = subscriptions.remove(taken.subscription_id.as_str()) else {
                outcome.left.push(taken.piece);
                continue;
            };
            let s = &loaded.aggregate;
            let method = s
                .payment_method_id
                .as_ref()
                .and_then(|id| methods.remove(id.as_str()))
                .map(|loaded| loaded.aggregate)
                .filter(|method| method.exists() && !method.is_removed());
            let customer = s
                .customer_id
                .as_ref()
                .and_then(|id| customers.get(id.as_str()));
            let common = s.status == Some(SubscriptionStatus::Active)
                && !s.cancel_at_period_end
                && s.current_period_end == Some(taken.period_end)
                && s.plan.as_ref().is_some_and(|plan| {
                    !bills_usage(plan) && !plans_with_credits.contains(plan.plan_id.as_str())
                })
                && method.is_some()
                && customer.is_some()
                && s.customer_id
                    .as_ref()
                    .is_some_and(|id| customers_in_batch.insert(id.clone()));
            let (Some(method), Some(customer), true) = (method, customer, common) else {
                outcome.left.push(taken.piece);
                continue;
            };
            let header = header_of(merchant_name.clone(), Some(customer));
            match self.decide_renewal(metadata, &taken, loaded).await {
                Some((subscription, invoice_id, invoice)) => renewals.push(Renewal {
                    taken,
                    subscription,
                    method,
                    header,
                    invoice_id,
                    invoice,
                    payment: None,
                }),
                None => outcome.left.push(taken.piece),
            }
        }
        Ok((renewals, outcome))
    }

    /// The renewal of `loaded` (its period ended as `taken` says) and the new period's draft,
    /// decided; `None` when either is refused (the renewal one by one will say why).
    async fn decide_renewal(
        &self,
        metadata: &CommandMetadata,
        taken: &Taken,
        loaded: Loaded<Subscription>,
    ) -> Option<(Decided<Subscription>, InvoiceId, Decided<Invoice>)> {
        let tenant = metadata.tenant().clone();
        let period_start = taken.period_end;
        let renewed = self
            .subscriptions
            .decide(
                taken.subscription_id.as_str(),
                loaded,
                SubscriptionCommand::RenewSubscription {
                    tenant: tenant.clone(),
                    period_start,
                },
                metadata,
            )
            .await
            .ok()
            .filter(|renewed| !renewed.events.is_empty())?;
        let subscription = &renewed.after.aggregate;
        let period_end = subscription
            .current_period_end
            .filter(|_| subscription.current_period_start == Some(period_start))?;
        let plan = subscription.plan.as_ref()?;
        let invoice_id = period_invoice_id(&taken.subscription_id, period_start);
        let draft = InvoiceCommand::CreateDraft {
            id: invoice_id.clone(),
            tenant,
            customer_id: subscription.customer_id.clone()?,
            subscription_id: Some(taken.subscription_id.clone()),
            currency: plan.currency.as_str().to_owned(),
            lines: period_lines(subscription, period_start, period_end),
            period_start: Some(period_start),
            period_end: Some(period_end),
        };
        let drafted = self
            .invoices
            .decide(invoice_id.as_str(), Loaded::new(), draft, metadata)
            .await
            .ok()?;
        Some((renewed, invoice_id, drafted))
    }
}

impl App {
    /// Issues each renewal's invoice with the next numbers of the series and records its
    /// charge pending, then writes the batch: one statement. Answers the renewals written, or
    /// (refused, or not known to be written) every piece, to run one by one.
    async fn issue_and_record(
        &self,
        metadata: &CommandMetadata,
        renewals: Vec<Renewal>,
    ) -> Result<(Vec<Renewal>, Vec<Taken>), Unwritten> {
        let tenant = metadata.tenant().clone();
        let leave_all = |renewals: Vec<Renewal>| -> Vec<Taken> {
            renewals.into_iter().map(|r| r.taken).collect()
        };
        let series = match self.series_of(&tenant, DocumentType::Standard).await {
            Ok(series) => series,
            Err(_) => return Err(Unwritten::Refused(leave_all(renewals))),
        };
        let issue = |header: &DocumentHeader, number: String| InvoiceCommand::Issue {
            tenant: tenant.clone(),
            number,
            due_date: None,
            header: header.clone(),
        };
        let key = format!("{}:{series}", tenant.key());
        let (place, likely) = self.numbering.join_with(&key, renewals.len());
        // The documents are rendered with their likely numbers while the batch waits for the
        // series' turn (`document_series.rs`): in its turn each is found rendered.
        let ahead = async {
            let Some(first) = likely else { return };
            for (n, renewal) in (first..).zip(&renewals) {
                let number = format_number(&series, n);
                self.render_ahead(
                    &renewal.invoice.after.aggregate,
                    issue(&renewal.header, number),
                )
                .await;
            }
        };
        let (_turn, ()) = tokio::join!(self.numbering.turn(&key), ahead);
        let last = match self.numbering.last_claimed(&key) {
            Some(last) => last,
            None => match DocumentNumbersProjection::last(&self.pool, &tenant, &series).await {
                Ok(last) => last,
                Err(_) => {
                    place.leave(None);
                    return Err(Unwritten::Refused(leave_all(renewals)));
                }
            },
        };
        let mut claimed = last;
        let mut issued = Vec::with_capacity(renewals.len());
        let mut refused = Vec::new();
        for mut renewal in renewals {
            let number = format_number(&series, claimed + 1);
            let decided = self
                .invoices
                .decide(
                    renewal.invoice_id.as_str(),
                    renewal.invoice.after.clone(),
                    issue(&renewal.header, number),
                    metadata,
                )
                .await;
            let Ok(decided) = decided else {
                refused.push(renewal.taken);
                continue;
            };
            claimed += 1;
            renewal.invoice.events.extend(decided.events);
            renewal.invoice.after = decided.after;
            let invoice = &renewal.invoice.after.aggregate;
            if invoice.status == Some(InvoiceStatus::Issued) && invoice.amount_due_cents() > 0 {
                match self.decide_charge(metadata, &renewal).await {
                    Some(payment) => renewal.payment = Some(payment),
                    None => {
                        // Its number would be claimed with nothing to show for it: the
                        // renewals after it take the numbers again.
                        claimed -= 1;
                        refused.push(renewal.taken);
                        continue;
                    }
                }
            }
            issued.push(renewal);
        }
        if issued.is_empty() {
            place.leave(Some(last));
            return Err(Unwritten::Refused(refused));
        }
        let appends: Vec<&[SerializedEvent]> = issued
            .iter()
            .flat_map(|r| {
                let payment = r.payment.as_ref().map(|(_, p)| p.events.as_slice());
                [
                    Some(r.subscription.events.as_slice()),
                    Some(r.invoice.events.as_slice()),
                    payment,
                ]
            })
            .flatten()
            .collect();
        match self.subscriptions.log.append_atomically(&appends).await {
            Ok(()) => place.leave(Some(claimed)),
            Err(AtomicAppendError::Refused) => {
                place.leave(None);
                let mut all = leave_all(issued);
                all.extend(refused);
                return Err(Unwritten::Refused(all));
            }
            Err(AtomicAppendError::Failed(e)) => {
                place.leave(None);
                return Err(Unwritten::Unknown(AppError::internal("Failed to renew", e)));
            }
        }
        for renewal in &issued {
            let subscription = &renewal.taken.subscription_id;
            self.subscriptions
                .keep_committed(subscription.as_str(), renewal.subscription.after.clone())
                .await;
            self.invoices
                .keep_committed(renewal.invoice_id.as_str(), renewal.invoice.after.clone())
                .await;
            if let Some((id, payment)) = &renewal.payment {
                self.payments
                    .keep_committed(id.as_str(), payment.after.clone())
                    .await;
            }
        }
        Ok((issued, refused))
    }

    /// The pending charge of `renewal`'s issued invoice (its first: `charges.rs`'s id),
    /// decided; `None` if refused.
    async fn decide_charge(
        &self,
        metadata: &CommandMetadata,
        renewal: &Renewal,
    ) -> Option<(PaymentId, Decided<Payment>)> {
        let invoice = &renewal.invoice.after.aggregate;
        let payment_id = charge_id(&renewal.invoice_id, invoice.issue_date?, 1);
        let command = PaymentCommand::Initiate {
            id: payment_id.clone(),
            tenant: metadata.tenant().clone(),
            customer_id: invoice.customer_id.clone()?,
            invoice_id: Some(renewal.invoice_id.clone()),
            payment_method_id: renewal.method.id.clone(),
            provider: renewal.method.provider.unwrap_or_default(),
            kind: PaymentKind::Charge,
            amount_cents: invoice.amount_due_cents(),
            currency: invoice.currency.clone()?,
            refunded_payment_id: None,
            top_up: None,
        };
        let decided = self
            .payments
            .decide(payment_id.as_str(), Loaded::new(), command, metadata)
            .await
            .ok()?;
        Some((payment_id, decided))
    }

    /// Asks the provider for each renewal's pending charge, then writes the succeeded ones
    /// settled, their invoices paid and their subscriptions paid up: one statement. A declined
    /// charge, or a batch the database refuses, is settled one by one; one the provider has
    /// not decided stays pending for the scheduler.
    async fn charge_renewals(
        &self,
        metadata: &CommandMetadata,
        renewals: Vec<Renewal>,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant();
        let charged: Vec<Renewal> = renewals
            .into_iter()
            .filter(|r| r.payment.is_some())
            .collect();
        if charged.is_empty() {
            return Ok(());
        }
        let gateway = self.merchant_gateway(tenant).await?;
        let customers: Vec<String> = charged
            .iter()
            .filter_map(|r| r.invoice.after.aggregate.customer_id.as_ref())
            .map(|id| id.to_string())
            .collect();
        let provider_customers = provider_links::provider_customers(
            &self.pool,
            tenant,
            &customers,
            gateway.gateway.name(),
        )
        .await?;
        let answers = futures::future::join_all(charged.iter().map(|renewal| {
            let (_, payment) = renewal.payment.as_ref().expect("charged");
            let customer = renewal
                .invoice
                .after
                .aggregate
                .customer_id
                .as_ref()
                .and_then(|id| provider_customers.get(id.as_str()));
            charge_at(
                &gateway,
                &payment.after.aggregate,
                &renewal.method,
                customer.map(String::as_str),
            )
        }))
        .await;

        let mut paid = Vec::new();
        let mut one_by_one = Vec::new();
        for (mut renewal, answer) in charged.into_iter().zip(answers) {
            let Some((payment_id, payment)) = renewal.payment.take() else {
                continue;
            };
            match answer {
                Some(outcome @ SettlementOutcome::Succeeded { .. }) => {
                    let settled = self
                        .decide_paid(metadata, renewal, payment, outcome.clone())
                        .await;
                    match settled {
                        Some(settled) => paid.push(settled),
                        None => one_by_one.push((payment_id, outcome)),
                    }
                }
                Some(outcome) => one_by_one.push((payment_id, outcome)),
                // Not decided yet: the scheduler asks again (`scheduler.rs`).
                None => {}
            }
        }
        let appends: Vec<&[SerializedEvent]> = paid
            .iter()
            .flat_map(|settled| {
                let subscription = settled.subscription.as_ref().map(|s| s.events.as_slice());
                [
                    Some(settled.payment.events.as_slice()),
                    Some(settled.invoice.events.as_slice()),
                    subscription,
                ]
            })
            .flatten()
            .filter(|events| !events.is_empty())
            .collect();
        let written = appends.is_empty()
            || self
                .subscriptions
                .log
                .append_atomically(&appends)
                .await
                .is_ok();
        if written {
            for settled in paid {
                self.payments
                    .keep_committed(settled.payment_id.as_str(), settled.payment.after)
                    .await;
                self.invoices
                    .keep_committed(settled.invoice_id.as_str(), settled.invoice.after)
                    .await;
                if let Some(subscription) = settled.subscription {
                    self.subscriptions
                        .keep_committed(settled.subscription_id.as_str(), subscription.after)
                        .await;
                }
            }
            if let Some(flow) = &metadata.flow {
                flow.committed();
            }
        } else {
            // Whether the write failed or was refused, one by one finds out: a settlement
            // written meanwhile is found settled (`charges.rs`).
            one_by_one.extend(paid.into_iter().map(|s| (s.payment_id, s.outcome)));
        }
        let mut failure = None;
        for (payment_id, outcome) in one_by_one {
            if let Err(e) = self.settle_charge(metadata, &payment_id, outcome).await {
                failure.get_or_insert(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

/// A renewal's succeeded charge, decided: its settlement, its invoice paid, and its
/// subscription paid up (`None` when that changes nothing).
struct Settled {
    subscription_id: SubscriptionId,
    invoice_id: InvoiceId,
    payment_id: PaymentId,
    outcome: SettlementOutcome,
    payment: Decided<Payment>,
    invoice: Decided<Invoice>,
    subscription: Option<Decided<Subscription>>,
}

impl App {
    /// What charge `payment` of a renewal succeeding (as `outcome` says) writes, decided on
    /// the states the batch's first write left; `None` if a step is refused.
    async fn decide_paid(
        &self,
        metadata: &CommandMetadata,
        renewal: Renewal,
        payment: Decided<Payment>,
        outcome: SettlementOutcome,
    ) -> Option<Settled> {
        let Renewal {
            taken,
            subscription,
            invoice_id,
            invoice,
            ..
        } = renewal;
        let tenant = metadata.tenant().clone();
        let payment_id = payment.after.aggregate.id.clone()?;
        let settled = self
            .payments
            .decide(
                payment_id.as_str(),
                payment.after,
                PaymentCommand::Settle {
                    tenant: tenant.clone(),
                    outcome: outcome.clone(),
                },
                metadata,
            )
            .await
            .ok()?;
        let recorded = self
            .invoices
            .decide(
                invoice_id.as_str(),
                invoice.after,
                InvoiceCommand::RecordPayment {
                    tenant: tenant.clone(),
                    payment_id: payment_id.clone(),
                    amount_cents: settled.after.aggregate.amount_cents,
                },
                metadata,
            )
            .await
            .ok()?;
        let paid_up = if recorded.after.aggregate.status == Some(InvoiceStatus::Paid) {
            self.subscriptions
                .decide(
                    taken.subscription_id.as_str(),
                    subscription.after,
                    SubscriptionCommand::MarkPaid { tenant },
                    metadata,
                )
                .await
                .ok()
                .filter(|paid_up| !paid_up.events.is_empty())
        } else {
            None
        };
        Some(Settled {
            subscription_id: taken.subscription_id,
            invoice_id,
            payment_id,
            outcome,
            payment: settled,
            invoice: recorded,
            subscription: paid_up,
        })
    }
}
