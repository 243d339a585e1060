//! What `billstream scheduler status` shows: whether an instance owns the scheduler, and per
//! tenant the work due now by its clock (the queue), how late the oldest piece is (the lag),
//! when the next piece falls due, and the charges still pending that the scheduler will ask
//! the provider about again.

use chrono::{DateTime, Duration, Utc};
use domain::tenant::Tenant;
use projections::read_models::billing_schedule;

use crate::context::App;
use crate::error::AppError;
use crate::scheduler::SCHEDULER_LOCK;

/// How many due pieces a status counts per tenant at most.
const QUEUE_COUNT_LIMIT: i64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerStatus {
    /// Some instance holds the scheduler's lock in this database.
    pub owned: bool,
    pub tenants: Vec<TenantQueue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantQueue {
    pub tenant: String,
    /// The tenant's now: its test clock's in test mode.
    pub now: DateTime<Utc>,
    /// Pieces due by now, one per subscription (as the scheduler runs them).
    pub due_now: usize,
    /// How long the oldest due piece has waited.
    pub lag: Option<Duration>,
    /// When the next piece not yet due falls due.
    pub next_due: Option<DateTime<Utc>>,
    /// Charges pending for over a minute, which the scheduler asks about again.
    pub pending_charges: usize,
}

impl App {
    /// The scheduler's owner, queue and lag, read from the read models and `pg_locks`. The
    /// test clocks are read from the database first, so this is right in any process.
    pub async fn scheduler_status(&self) -> Result<SchedulerStatus, AppError> {
        self.load_test_clocks().await?;
        let owned: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
               AND classid = ($1 >> 32)::oid AND objid = ($1 & 4294967295)::oid \
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
        )
        .bind(SCHEDULER_LOCK)
        .fetch_one(&self.pool)
        .await?;
        let mut tenants = Vec::new();
        for key in billing_schedule::tenants(&self.pool).await? {
            let Some(tenant) = Tenant::from_key(&key) else {
                continue;
            };
            tenants.push(self.tenant_queue(&tenant).await?);
        }
        Ok(SchedulerStatus { owned, tenants })
    }

    async fn tenant_queue(&self, tenant: &Tenant) -> Result<TenantQueue, AppError> {
        let now = self.clock.now_for(tenant);
        let due = self.due_work(tenant, now, QUEUE_COUNT_LIMIT).await?;
        let upcoming = self
            .due_work(
                tenant,
                now + Duration::days(366 * 100),
                due.len() as i64 + 1,
            )
            .await?;
        let pending = billing_schedule::pending_payments(
            &self.pool,
            tenant,
            now - Duration::minutes(1),
            QUEUE_COUNT_LIMIT,
        )
        .await?;
        Ok(TenantQueue {
            tenant: tenant.key(),
            now,
            due_now: due.len(),
            lag: due.first().map(|piece| now - piece.at),
            next_due: upcoming.iter().map(|piece| piece.at).find(|at| *at > now),
            pending_charges: pending.len(),
        })
    }
}
