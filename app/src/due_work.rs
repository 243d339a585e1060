//! The billing work that falls due, and doing it: period ends (renew or cancel), retries of
//! failed charges, grace ends, credit expiries. The scheduler does what is due by each tenant's clock; a
//! test-clock advance does, in time order, what falls due on the way to its new time.
//!
//! Pieces for different subscriptions are independent (each its own recorded flow, each exact
//! once however often it runs), so a batch runs them side by side; a subscription has at most
//! one piece in a batch, its earliest, so its own steps stay in order.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use domain::credit::{CreditCommand, CreditLedger, FeatureSlug};
use domain::id::{CustomerId, InvoiceId, PrefixedId, SubscriptionId};
use domain::tenant::Tenant;
use futures::stream::{self, StreamExt};
use projections::read_models::billing_schedule;

use crate::charges::{ChargeOutcome, RETRY_AFTER_DAYS};
use crate::context::App;
use crate::credits::ledger_id;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::command_error;

/// Pieces of work run side by side. Each holds a database connection for a few milliseconds
/// at a time, so this leaves most of a pool to the requests.
const PARALLEL_PIECES: usize = 16;
/// Pieces a batch reads at most.
const BATCH: i64 = 1000;
/// A test-clock advance runs together the pieces due within this much of the earliest, at the
/// clock of the latest: the scheduler itself runs a piece up to a tick (a second) late.
const ADVANCE_WINDOW: Duration = Duration::seconds(1);

/// What the scheduler does for a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueWork {
    /// Its period ended at `period_end`: renew it (or cancel it, when it ends at its period's
    /// end). Carrying the end makes a renewal another instance did meanwhile a no-op.
    PeriodEnd {
        subscription_id: SubscriptionId,
        period_end: DateTime<Utc>,
    },
    /// Charge its open invoice again.
    Retry {
        subscription_id: SubscriptionId,
        invoice_id: InvoiceId,
        attempt: u32,
    },
    /// Its grace ended unpaid: cancel it, write its invoice off.
    GraceEnd { subscription_id: SubscriptionId },
    /// Grants of a customer's credits for a feature expired: record it.
    CreditExpiry {
        customer_id: CustomerId,
        feature_slug: FeatureSlug,
    },
}

impl DueWork {
    /// What the piece works on: a batch holds one piece of each, so its steps stay in order.
    fn subject(&self) -> String {
        match self {
            DueWork::PeriodEnd {
                subscription_id, ..
            }
            | DueWork::Retry {
                subscription_id, ..
            }
            | DueWork::GraceEnd { subscription_id } => subscription_id.to_string(),
            DueWork::CreditExpiry {
                customer_id,
                feature_slug,
            } => ledger_id(customer_id, feature_slug),
        }
    }
}

/// A piece of work and when it falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at: DateTime<Utc>,
    pub work: DueWork,
}

impl App {
    /// What falls due for `tenant` by `until`, earliest first: at most `limit` pieces, one per
    /// subscription (its earliest).
    pub async fn due_work(
        &self,
        tenant: &Tenant,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Due>, AppError> {
        let schedule = billing_schedule::due_by(&self.pool, tenant, until, limit).await?;
        let mut due = Vec::new();
        for (id, at) in schedule.period_ends {
            let work = DueWork::PeriodEnd {
                subscription_id: parse(&id)?,
                period_end: at,
            };
            due.push(Due { at, work });
        }
        for (id, at) in schedule.grace_ends {
            let work = DueWork::GraceEnd {
                subscription_id: parse(&id)?,
            };
            due.push(Due { at, work });
        }
        for open in schedule.failed_invoices {
            let Some(after) = usize::try_from(open.failures - 1)
                .ok()
                .and_then(|index| RETRY_AFTER_DAYS.get(index))
            else {
                continue;
            };
            let at = open.first_failure + Duration::days(*after);
            if at > until {
                continue;
            }
            let work = DueWork::Retry {
                subscription_id: parse(&open.subscription_id)?,
                invoice_id: parse(&open.invoice_id)?,
                attempt: open.failures as u32 + 1,
            };
            due.push(Due { at, work });
        }
        for (customer_id, feature_slug, at) in
            billing_schedule::credit_expiries(&self.pool, tenant, until, limit).await?
        {
            let work = DueWork::CreditExpiry {
                customer_id: parse(&customer_id)?,
                feature_slug: FeatureSlug::parse(&feature_slug)
                    .map_err(|e| AppError::internal("Internal server error", e))?,
            };
            due.push(Due { at, work });
        }
        due.sort_by_key(|piece| piece.at);
        let mut seen = HashSet::new();
        due.retain(|piece| seen.insert(piece.work.subject()));
        due.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(due)
    }

    /// Does one piece of work for `tenant`, as its scheduler; when this process runs the same
    /// piece already, waits for that run first.
    pub async fn run_due(&self, tenant: &Tenant, work: DueWork) -> Result<(), AppError> {
        let key = piece_key(tenant, &work);
        // After waiting for another run (`None`), the piece usually turns out done below. Not
        // always: a caller that hung up lets go of its hold while its flow's task runs on.
        let _hold = self.pieces_in_flight.begin(key).await;
        let metadata = CommandMetadata::acting_as(Principal {
            tenant: tenant.clone(),
            key_id: "scheduler".into(),
            session: None,
        });
        match work {
            DueWork::PeriodEnd {
                subscription_id,
                period_end,
            } => {
                let input = FlowInput::EndPeriod {
                    subscription_id: subscription_id.clone(),
                    period_end,
                };
                // Read due before another run (the scheduler, an advance) ended it: nothing
                // left to do, once that run has finished. One still midway (on another
                // instance, or abandoned) is run again here, as before this check: its steps
                // that are done change nothing, and whoever asked (an advance) gets the work
                // done when it is answered.
                let still_due = billing_schedule::period_end_still_due(
                    &self.pool,
                    tenant,
                    subscription_id.as_str(),
                    period_end,
                )
                .await?;
                if !still_due && !self.flow_unfinished(tenant, &input).await? {
                    return Ok(());
                }
                self.in_flow(&metadata, input, |app, metadata| async move {
                    app.end_period(&metadata, &subscription_id, period_end)
                        .await
                })
                .await
            }
            DueWork::Retry {
                invoice_id,
                attempt,
                ..
            } => self
                .charge_invoice(&metadata, &invoice_id, attempt)
                .await
                .map(|_: ChargeOutcome| ()),
            DueWork::GraceEnd { subscription_id } => {
                self.end_grace(&metadata, &subscription_id).await
            }
            DueWork::CreditExpiry {
                customer_id,
                feature_slug,
            } => {
                self.credits
                    .execute(
                        &ledger_id(&customer_id, &feature_slug),
                        CreditCommand::RecordExpiries {
                            tenant: tenant.clone(),
                        },
                        &metadata,
                    )
                    .await
                    .map_err(command_error::<CreditLedger>)?;
                Ok(())
            }
        }
    }

    /// Runs `pieces`: the period ends it can in bulk (`bulk_renewals.rs`), the rest side by
    /// side; answers how many succeeded, and the first failure.
    pub async fn run_all(&self, tenant: &Tenant, pieces: Vec<Due>) -> (usize, Option<AppError>) {
        let bulk = self.renew_in_bulk(tenant, pieces).await;
        let outcomes: Vec<Result<(), AppError>> = stream::iter(bulk.left)
            .map(|piece| self.run_due(tenant, piece.work))
            .buffer_unordered(PARALLEL_PIECES)
            .collect()
            .await;
        let mut done = bulk.renewed;
        let mut failure = bulk.failure;
        for outcome in outcomes {
            match outcome {
                Ok(()) => done += 1,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        (done, failure)
    }

    /// Does what has fallen due for `tenant` by its clock, a batch at a time, up to `most`
    /// pieces; answers how many were done. A failed piece is left for the next call.
    pub async fn run_due_now(&self, tenant: &Tenant, most: usize) -> Result<usize, AppError> {
        let mut done = 0;
        while done < most {
            let now = self.clock.now_for(tenant);
            let due = self.due_work(tenant, now, BATCH).await?;
            if due.is_empty() {
                break;
            }
            let (ran, failure) = self.run_all(tenant, due).await;
            done += ran;
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(done)
    }

    /// Moves the caller's test clock to `to`, doing on the way, in time order and each at its
    /// own time (within [`ADVANCE_WINDOW`]), everything that falls due for its tenant.
    /// Answers its new now.
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
        // A flow an instance that died left midway is finished first, at its own time: a
        // batch of renewals cut before its charges were settled must not be renewed again
        // before they are (`bulk_renewals.rs`). (A renewal one by one is finished by its own
        // piece, below.)
        if let Err(e) = self.resume_abandoned_flows().await {
            tracing::warn!(error = %e, "an advance could not resume abandoned flows first");
        }
        // Bounded, so that a schedule that keeps making work due cannot spin forever.
        for _ in 0..100_000 {
            let due = self.due_work(&tenant, to, BATCH).await?;
            let Some(first) = due.first().map(|piece| piece.at) else {
                // A piece the scheduler is midway through is no longer due (its renewal moved
                // the subscription on) but not done: the advance answers once it is, and
                // looks again (a failed charge may have made a retry due).
                if self
                    .pieces_in_flight
                    .wait_for(&format!("{}:", tenant.key()))
                    .await
                {
                    continue;
                }
                break;
            };
            let window: Vec<Due> = due
                .into_iter()
                .take_while(|piece| piece.at <= first + ADVANCE_WINDOW)
                .collect();
            let latest = window.last().map_or(first, |piece| piece.at);
            if latest > self.clock.now_for(&tenant) {
                self.move_test_clock(principal, latest).await?;
            }
            if let (_, Some(e)) = self.run_all(&tenant, window).await {
                return Err(e);
            }
        }
        self.move_test_clock(principal, to).await
    }
}

/// What names a piece of `tenant`'s work among the pieces in flight (`pieces_in_flight.rs`).
pub(crate) fn piece_key(tenant: &Tenant, work: &DueWork) -> String {
    format!("{}:{work:?}", tenant.key())
}

fn parse<I: PrefixedId>(id: &str) -> Result<I, AppError> {
    I::parse(id).map_err(|e| AppError::internal("Internal server error", e))
}
