//! Flows that span aggregates, made durable. A flow (a subscription's start or cancel, a
//! cascade delete, a payment method's move, an add that becomes the default) writes a record
//! of itself before its first step (`flow_runs`), runs on a task of its own so that a caller
//! who hangs up cancels nothing, and marks the record finished after its last step — done, or
//! refused and taken back.
//!
//! A process that dies in between leaves the record unfinished, held by an instance that is
//! gone (its liveness lock ended with its connection: `instance.rs`). Another instance — or
//! the same service restarted — resumes it ([`App::resume_abandoned_flows`], every second):
//! it runs the same use-case again with the recorded input, as the same flow. Every event
//! carries its flow's id and step (the ordinal of its command among the flow's commands to
//! that aggregate), and a resumed flow skips a command whose aggregate already has an event
//! of the flow at that step (`command_runner.rs`); what the flow makes has ids derived from the flow's
//! id, so the run again makes the same subscription, not a second one. Last, the customer's
//! payment method links are healed: a method linked to a subscription that does not charge it
//! (canceled, moved, never started) is unlinked, whichever step the first run died after.
//!
//! A keyed request (`Idempotency-Key`) is a flow too, with an id derived from its key: its
//! retry, when the instance that ran it is gone, runs it again as a resumed flow, and gets the
//! answer of a request that happened once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use domain::id::{CustomerId, InvoiceId, PaymentMethodId, PrefixedId, SubscriptionId, TopUpId};
use domain::invoice::DocumentType;
use domain::payment_method::PaymentMethodCommand;
use domain::tenant::Tenant;
use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::tables::flow_runs::{self, UnfinishedFlow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::customer_lock::CustomerLock;
use crate::error::AppError;
use crate::instance::Instance;
use crate::payment_methods::CollectedPaymentMethod;
use crate::principal::{CommandMetadata, Principal};
use crate::subscriptions::NewSubscription;

/// The kind of a keyed request that is no flow of its own.
pub const KEYED_REQUEST: &str = "request";
/// A flow resumed this often without finishing is left for an operator (and logged).
const MAX_ATTEMPTS: i32 = 20;
/// How often an instance looks for flows to resume.
const RESUME_EVERY: Duration = Duration::from_secs(1);
/// How long finished flows' records are kept.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// One run of a flow (or keyed request), carried in the metadata of its commands.
#[derive(Debug, Clone)]
pub struct FlowRun {
    pub id: String,
    kind: String,
    /// When the flow first started (Unix milliseconds): the time of the ids it makes.
    started_ms: u64,
    /// Run again after a run that may have done some of its steps.
    pub resuming: bool,
    commits: Arc<AtomicUsize>,
    /// How many commands this run gave each aggregate so far.
    steps: Arc<Mutex<HashMap<String, usize>>>,
    death: Option<Arc<DeathPlan>>,
}

impl FlowRun {
    fn new(id: String, kind: &str, started_ms: u64, resuming: bool, app: &App) -> Self {
        Self {
            id,
            kind: kind.to_owned(),
            started_ms,
            resuming,
            commits: Arc::default(),
            steps: Arc::default(),
            death: app.death.clone(),
        }
    }

    /// The run of the keyed request `stored_key` of `scope`: its id is the key's, so every run
    /// of the key is the same flow.
    pub(crate) fn keyed(
        scope: &str,
        stored_key: &str,
        started_ms: u64,
        resuming: bool,
        app: &App,
    ) -> Self {
        let digest = Sha256::digest(format!("billstream.keyed-request:{scope}:{stored_key}"));
        let id = format!("req_{}", hex(&digest[..16]));
        Self::new(id, KEYED_REQUEST, started_ms, resuming, app)
    }

    /// The id of the thing this flow makes in `role`: the same in every run of the flow.
    pub(crate) fn derived_id<I: PrefixedId>(&self, role: &str) -> I {
        let digest = Sha256::digest(format!("{}:{role}", self.id));
        let mut entropy = [0u8; 10];
        entropy.copy_from_slice(&digest[..10]);
        I::derived(self.started_ms, &entropy)
    }

    /// The step a command `command` (its kind: `Issue`, `RecordPayment`, …) to aggregate
    /// `aggregate_type` `aggregate_id` is in this run: the kind and its ordinal among the
    /// run's commands of that kind to that aggregate, as `RecordPayment#1`. A run again gives
    /// the same command the same step — also when it skips another command the first run
    /// made, since kinds are counted apart — and skips it when the log has an event of the
    /// flow at that step.
    pub(crate) fn next_step(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        command: &str,
    ) -> String {
        let mut steps = self.steps.lock().expect("flow steps");
        let step = steps
            .entry(format!("{aggregate_type}/{aggregate_id}/{command}"))
            .or_default();
        *step += 1;
        format!("{command}#{step}")
    }

    /// Counts a command of the flow as committed; a test's [`DeathPlan`] may end the process
    /// right here.
    pub(crate) fn committed(&self) {
        let count = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(death) = &self.death {
            death.at(&self.kind, count);
        }
    }

    fn as_kind(&self, kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            ..self.clone()
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// For crash tests: the process dies right after the `after_commits`-th command of a flow of
/// `kind` (`request` for a keyed request) committed, before the next step. `billstream serve`
/// takes it from `BILLSTREAM_DIE_AFTER=kind:n` and aborts as `kill -9` would; in-process
/// tests panic instead, which ends the flow's task as abruptly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeathPlan {
    pub kind: String,
    pub after_commits: usize,
    pub abort: bool,
}

impl DeathPlan {
    /// `kind:n`, as `BILLSTREAM_DIE_AFTER` holds it.
    pub fn parse(value: &str) -> Option<Self> {
        let (kind, after) = value.rsplit_once(':')?;
        Some(Self {
            kind: kind.to_owned(),
            after_commits: after.parse().ok().filter(|n| *n > 0)?,
            abort: true,
        })
    }

    /// Ends the process if a flow of `kind` has just made its `count`th commit and this
    /// plan says to die there.
    pub(crate) fn at(&self, kind: &str, count: usize) {
        if self.kind == kind && self.after_commits == count {
            self.die(kind, count);
        }
    }

    fn die(&self, kind: &str, count: usize) {
        tracing::error!(kind, count, "dying as BILLSTREAM_DIE_AFTER asks");
        if self.abort {
            std::process::abort();
        }
        panic!("died after commit {count} of a {kind} flow");
    }
}

/// What a flow needs to run again: its kind and input, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub(crate) enum FlowInput {
    #[serde(rename = "subscription.start", rename_all = "camelCase")]
    StartSubscription {
        customer_id: CustomerId,
        plan_id: String,
        payment_method_id: Option<PaymentMethodId>,
        #[serde(default)]
        quantity: Option<i64>,
    },
    #[serde(rename = "subscription.cancel", rename_all = "camelCase")]
    CancelSubscription { subscription_id: SubscriptionId },
    #[serde(rename = "customer.delete", rename_all = "camelCase")]
    DeleteCustomer { customer_id: CustomerId },
    #[serde(rename = "subscription.move", rename_all = "camelCase")]
    MoveSubscription {
        customer_id: CustomerId,
        payment_method_id: String,
    },
    #[serde(rename = "subscription.bill", rename_all = "camelCase")]
    BillPeriod {
        subscription_id: SubscriptionId,
        period_start: DateTime<Utc>,
    },
    #[serde(rename = "subscription.periodEnd", rename_all = "camelCase")]
    EndPeriod {
        subscription_id: SubscriptionId,
        period_end: DateTime<Utc>,
    },
    #[serde(rename = "invoice.charge", rename_all = "camelCase")]
    ChargeInvoice { invoice_id: InvoiceId, attempt: u32 },
    /// Renewals written in bulk (`bulk_renewals.rs`): resumed, it completes their invoices'
    /// first charges.
    #[serde(rename = "renewal.bulk", rename_all = "camelCase")]
    RenewInBulk { invoice_ids: Vec<InvoiceId> },
    #[serde(rename = "invoice.adjust", rename_all = "camelCase")]
    AdjustInvoice {
        invoice_id: InvoiceId,
        document_type: DocumentType,
        amount_cents: Option<i64>,
        reason: Option<String>,
    },
    #[serde(rename = "credits.purchase", rename_all = "camelCase")]
    PurchaseTopUp {
        customer_id: CustomerId,
        top_up_id: TopUpId,
        quantity: i64,
    },
    #[serde(rename = "paymentMethod.add", rename_all = "camelCase")]
    AddPaymentMethod {
        customer_id: CustomerId,
        payment_method_id: PaymentMethodId,
        collected: CollectedPaymentMethod,
    },
}

impl FlowInput {
    fn kind(&self) -> &'static str {
        match self {
            FlowInput::StartSubscription { .. } => "subscription.start",
            FlowInput::CancelSubscription { .. } => "subscription.cancel",
            FlowInput::DeleteCustomer { .. } => "customer.delete",
            FlowInput::MoveSubscription { .. } => "subscription.move",
            FlowInput::AddPaymentMethod { .. } => "paymentMethod.add",
            FlowInput::AdjustInvoice { .. } => "invoice.adjust",
            FlowInput::BillPeriod { .. } => "subscription.bill",
            FlowInput::EndPeriod { .. } => "subscription.periodEnd",
            FlowInput::ChargeInvoice { .. } => "invoice.charge",
            FlowInput::RenewInBulk { .. } => crate::bulk_renewals::BULK_RENEWAL,
            FlowInput::PurchaseTopUp { .. } => "credits.purchase",
        }
    }
}

/// A flow's record: who asked, in which request, when it started, and its input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowRecord {
    principal: Principal,
    request_id: Option<String>,
    started_ms: u64,
    input: FlowInput,
}

impl App {
    /// Runs `body` as the flow `input` describes: recorded first, on a task of its own, its
    /// record finished when it ends — unless it failed on our side (an internal error), when
    /// it is let go for a resume to finish.
    pub(crate) async fn in_flow<T, Fut>(
        &self,
        metadata: &CommandMetadata,
        input: FlowInput,
        body: impl FnOnce(App, CommandMetadata) -> Fut,
    ) -> Result<T, AppError>
    where
        Fut: Future<Output = Result<T, AppError>> + Send + 'static,
        T: Send + 'static,
    {
        let holder = self.instance.key(&self.pool).await?;
        let kind = input.kind();
        let flow = match &metadata.flow {
            Some(flow) => flow.as_kind(kind),
            None => FlowRun::new(
                format!("flow_{}", uuid::Uuid::now_v7().simple()),
                kind,
                // The tenant's now (its test clock in test mode), like the events' own times.
                u64::try_from(self.clock.now_for(metadata.tenant()).timestamp_millis())
                    .unwrap_or(0),
                false,
                self,
            ),
        };
        let record = FlowRecord {
            principal: metadata.principal.clone(),
            request_id: metadata.request_id.clone(),
            started_ms: flow.started_ms,
            input,
        };
        let record = serde_json::to_value(&record)
            .map_err(|e| AppError::internal("Internal server error", e))?;
        let tenant = metadata.tenant().key();
        flow_runs::begin(&self.pool, &flow.id, &tenant, kind, &record, holder).await?;
        let id = flow.id.clone();
        let metadata = CommandMetadata {
            flow: Some(flow),
            ..metadata.clone()
        };
        match tokio::spawn(body(self.clone(), metadata)).await {
            Ok(Err(error @ AppError::Internal { .. })) => {
                if let Err(e) = flow_runs::release(&self.pool, &id, holder).await {
                    tracing::warn!(error = %e, flow = id, "cannot let go of a failed flow");
                }
                Err(error)
            }
            Ok(outcome) => {
                if let Err(e) = flow_runs::finish(&self.pool, &id).await {
                    // Left unfinished, it is resumed later: every step it did is skipped.
                    tracing::warn!(error = %e, flow = id, "cannot mark a flow finished");
                }
                outcome
            }
            // The flow's task died where a test's death plan ended it: die along with it.
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => Err(AppError::internal("Internal server error", join)),
        }
    }

    /// Whether a flow with `input` is unfinished: another run of it may be midway (on
    /// another instance, or abandoned), with steps that are not yet visible in the read
    /// models.
    pub(crate) async fn flow_unfinished(
        &self,
        tenant: &Tenant,
        input: &FlowInput,
    ) -> Result<bool, AppError> {
        let kind = input.kind();
        let input = serde_json::to_value(input)
            .map_err(|e| AppError::internal("Internal server error", e))?;
        let record = serde_json::json!({ "input": input });
        Ok(flow_runs::any_unfinished(&self.pool, &tenant.key(), kind, &record).await?)
    }

    /// Resumes every unfinished flow whose instance is gone (or that failed on our side and
    /// was let go). Returns how many it finished.
    pub async fn resume_abandoned_flows(&self) -> Result<usize, AppError> {
        let holder = self.instance.key(&self.pool).await?;
        let mut finished = 0;
        for flow in flow_runs::unfinished(&self.pool, 100).await? {
            if flow.holder == Some(holder) || flow.attempts >= MAX_ATTEMPTS {
                continue;
            }
            if Instance::is_alive(&self.pool, flow.holder).await? {
                continue;
            }
            if !flow_runs::take_over(&self.pool, &flow.id, flow.holder, holder).await? {
                continue;
            }
            match self.resume(&flow).await {
                Ok(()) => {
                    flow_runs::finish(&self.pool, &flow.id).await?;
                    finished += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, flow = flow.id, kind = flow.kind, "resume failed");
                    flow_runs::release(&self.pool, &flow.id, holder).await?;
                }
            }
        }
        Ok(finished)
    }

    /// Runs flow `flow` again, as itself, then heals its customer's payment method links.
    async fn resume(&self, flow: &UnfinishedFlow) -> Result<(), AppError> {
        let record: FlowRecord = serde_json::from_value(flow.input.clone())
            .map_err(|e| AppError::internal("Internal server error", e))?;
        let kind = record.input.kind();
        let metadata = CommandMetadata {
            principal: record.principal,
            request_id: record.request_id,
            flow: Some(FlowRun::new(
                flow.id.clone(),
                kind,
                record.started_ms,
                true,
                self,
            )),
        };
        // A refusal is an outcome too (the flow finished by taking itself back); only our own
        // failures are worth another try.
        let outcome = match &record.input {
            FlowInput::StartSubscription {
                customer_id,
                plan_id,
                payment_method_id,
                quantity,
            } => self
                .start_subscription(
                    &metadata,
                    NewSubscription {
                        customer_id: Some(customer_id.to_string()),
                        plan_id: Some(plan_id.clone()),
                        payment_method_id: payment_method_id.as_ref().map(|id| id.to_string()),
                        quantity: *quantity,
                    },
                )
                .await
                .map(drop),
            FlowInput::CancelSubscription { subscription_id } => self
                .cancel_subscription(&metadata, subscription_id.as_str())
                .await
                .map(drop),
            FlowInput::DeleteCustomer { customer_id } => {
                self.delete_customer(&metadata, customer_id.as_str(), true)
                    .await
            }
            FlowInput::MoveSubscription {
                customer_id,
                payment_method_id,
            } => {
                self.set_subscription_payment_method(
                    &metadata,
                    customer_id,
                    Some(payment_method_id),
                )
                .await
            }
            FlowInput::AddPaymentMethod {
                customer_id,
                payment_method_id,
                collected,
            } => self
                .add_collected_payment_method(
                    &metadata,
                    customer_id,
                    payment_method_id.clone(),
                    collected.clone(),
                )
                .await
                .map(drop),
            FlowInput::AdjustInvoice {
                invoice_id,
                document_type,
                amount_cents,
                reason,
            } => self
                .adjust(
                    &metadata,
                    invoice_id,
                    *document_type,
                    *amount_cents,
                    reason.clone(),
                )
                .await
                .map(drop),
            FlowInput::BillPeriod {
                subscription_id,
                period_start,
            } => self
                .bill_in_flow(&metadata, subscription_id, *period_start, None)
                .await
                .map(drop),
            FlowInput::EndPeriod {
                subscription_id,
                period_end,
            } => {
                self.end_period(&metadata, subscription_id, *period_end)
                    .await
            }
            FlowInput::ChargeInvoice {
                invoice_id,
                attempt,
            } => self
                .charge_in_flow(&metadata, invoice_id, *attempt)
                .await
                .map(drop),
            FlowInput::RenewInBulk { invoice_ids } => {
                // An invoice the batch never wrote owes nothing: its period is still due, and
                // renewed by the next run. Any failure keeps the flow to be resumed again: a
                // charge may still be pending.
                let mut failure = Ok(());
                for invoice_id in invoice_ids {
                    if let Err(e) = self.charge_in_flow(&metadata, invoice_id, 1).await {
                        failure = Err(AppError::internal("Failed to complete renewals", e));
                    }
                }
                failure
            }
            FlowInput::PurchaseTopUp {
                customer_id,
                top_up_id,
                quantity,
            } => self
                .purchase_in_flow(&metadata, customer_id, top_up_id, *quantity)
                .await
                .map(drop),
        };
        if let Err(error @ AppError::Internal { .. }) = outcome {
            return Err(error);
        }
        let customer_id = match &record.input {
            FlowInput::CancelSubscription { subscription_id } => self
                .subscriptions
                .current(subscription_id.as_str())
                .await
                .map_err(|e| AppError::internal("Internal server error", e))?
                .customer_id
                .clone(),
            // An invoice's correction links no payment method.
            FlowInput::AdjustInvoice { .. }
            | FlowInput::BillPeriod { .. }
            | FlowInput::EndPeriod { .. }
            | FlowInput::ChargeInvoice { .. }
            | FlowInput::RenewInBulk { .. }
            | FlowInput::PurchaseTopUp { .. } => None,
            FlowInput::StartSubscription { customer_id, .. }
            | FlowInput::DeleteCustomer { customer_id }
            | FlowInput::MoveSubscription { customer_id, .. }
            | FlowInput::AddPaymentMethod { customer_id, .. } => Some(customer_id.clone()),
        };
        if let Some(customer_id) = customer_id {
            self.heal_payment_method_links(&metadata, &customer_id)
                .await?;
        }
        Ok(())
    }

    /// Unlinks each payment method of the customer that is linked to a subscription not
    /// charging it (canceled, moved to another method, never started): what a flow cut
    /// between its steps can leave. Runs in the customer's turn, so no start or move is
    /// halfway meanwhile.
    pub(crate) async fn heal_payment_method_links(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        let lock =
            CustomerLock::take(&self.lock_connections, &tenant, customer_id.as_str()).await?;
        let healed = async {
            let methods =
                PaymentMethodListProjection::for_customer(&self.pool, &tenant, customer_id).await?;
            for method in methods {
                let current = self
                    .payment_methods
                    .current(method.id.as_str())
                    .await
                    .map_err(|e| AppError::internal("Internal server error", e))?;
                let Some(subscription_id) = current.linked_subscription else {
                    continue;
                };
                let subscription = self
                    .subscriptions
                    .current(subscription_id.as_str())
                    .await
                    .map_err(|e| AppError::internal("Internal server error", e))?;
                let charges_it = subscription.is_active()
                    && subscription.payment_method_id.as_ref() == Some(&method.id);
                if charges_it {
                    continue;
                }
                self.payment_methods
                    .execute(
                        method.id.as_str(),
                        PaymentMethodCommand::UnlinkPaymentMethod {
                            tenant: tenant.clone(),
                            subscription_id,
                        },
                        metadata,
                    )
                    .await
                    .map_err(|e| AppError::internal("Internal server error", e))?;
            }
            Ok(())
        }
        .await;
        lock.end().await;
        healed
    }

    /// Resumes abandoned flows every second, and forgets finished ones after a week, until the
    /// process ends.
    pub fn spawn_flow_resumer(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESUME_EVERY);
            let mut ticks: u64 = 0;
            loop {
                tick.tick().await;
                ticks += 1;
                if let Err(e) = app.resume_abandoned_flows().await {
                    tracing::warn!(error = %e, "cannot resume abandoned flows");
                }
                if ticks % 3600 == 1 {
                    if let Err(e) = flow_runs::expire(&app.pool, RETENTION.as_secs_f64()).await {
                        tracing::warn!(error = %e, "cannot forget finished flows");
                    }
                }
            }
        });
    }
}
