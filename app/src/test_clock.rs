//! Test clocks, as Stripe's: in test mode a merchant can move its tenant's clock forward and
//! watch a year of renewals, failures and recoveries happen in seconds. Every time the
//! service stamps for a test-mode tenant (events, invoices' dates, periods) comes from its
//! clock, which runs on from where it was moved, as fast as the wall clock; it never goes back.
//!
//! Each instance keeps the offsets in memory (read by every command, so it must cost nothing)
//! and reloads them every second: an advance made through another instance reaches this one
//! within a second. The instance that advances knows at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::clock::Clock;
use domain::tenant::{Mode, Tenant};
use projections::tables::test_clocks;
use sqlx::PgPool;

use crate::context::App;
use crate::error::AppError;
use crate::principal::Principal;

pub const LIVE_MODE: &str = "Test clocks exist only in test mode";
pub const BACKWARDS: &str = "The test clock never goes back: `to` must not be before its now";

/// How often an instance reloads the offsets other instances may have moved.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The clock every aggregate reads: the base clock, ahead by its offset for a test-mode tenant
/// whose clock was moved.
pub struct TenantClock {
    base: Arc<dyn Clock>,
    /// Tenant key → how far ahead of the base clock it runs.
    offsets: RwLock<HashMap<String, TimeDelta>>,
}

impl TenantClock {
    pub fn new(base: Arc<dyn Clock>) -> Self {
        Self {
            base,
            offsets: RwLock::default(),
        }
    }

    fn offset(&self, tenant: &Tenant) -> TimeDelta {
        if tenant.mode != Mode::Test {
            return TimeDelta::zero();
        }
        self.offsets
            .read()
            .expect("test clock offsets")
            .get(&tenant.key())
            .copied()
            .unwrap_or_default()
    }

    fn replace(&self, offsets: HashMap<String, TimeDelta>) {
        let mut current = self.offsets.write().expect("test clock offsets");
        // Never back: an advance this instance just made may be newer than what it read.
        for (tenant, offset) in offsets {
            let entry = current.entry(tenant).or_default();
            *entry = (*entry).max(offset);
        }
    }
}

impl Clock for TenantClock {
    fn now(&self) -> DateTime<Utc> {
        self.base.now()
    }

    fn now_for(&self, tenant: &Tenant) -> DateTime<Utc> {
        self.base.now() + self.offset(tenant)
    }
}

async fn load(pool: &PgPool) -> Result<HashMap<String, TimeDelta>, sqlx::Error> {
    Ok(test_clocks::offsets(pool)
        .await?
        .into_iter()
        .map(|(tenant, micros)| (tenant, TimeDelta::microseconds(micros)))
        .collect())
}

impl App {
    /// The caller's test clock: what "now" is for its tenant.
    pub fn test_clock(&self, principal: &Principal) -> Result<DateTime<Utc>, AppError> {
        if principal.tenant.mode != Mode::Test {
            return Err(AppError::not_found(LIVE_MODE));
        }
        Ok(self.clock.now_for(&principal.tenant))
    }

    /// Moves the caller's test clock forward to `to` (not back: a `to` it has passed leaves
    /// it), and answers its new now; what falls due on the way is `App::advance_test_clock`'s.
    pub(crate) async fn move_test_clock(
        &self,
        principal: &Principal,
        to: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, AppError> {
        let now = self.test_clock(principal)?;
        // Already there: the clock ran on while the work due on the way was done (a caller's
        // `to` in the past is refused before: `App::advance_test_clock`).
        if to <= now {
            return Ok(now);
        }
        let offset = to - self.clock.now();
        let micros = offset.num_microseconds().unwrap_or(i64::MAX).max(0);
        let stored = test_clocks::advance(&self.pool, &principal.tenant.key(), micros).await?;
        self.tenant_clock.replace(HashMap::from([(
            principal.tenant.key(),
            TimeDelta::microseconds(stored),
        )]));
        Ok(self.clock.now_for(&principal.tenant))
    }

    /// Reads every tenant's test clock from the database: before serving, so a restarted
    /// service goes on where its clocks were.
    pub async fn load_test_clocks(&self) -> Result<(), AppError> {
        self.tenant_clock.replace(load(&self.pool).await?);
        Ok(())
    }

    /// Reloads the test clocks every second, until the process ends.
    pub fn spawn_test_clock_reload(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = app.load_test_clocks().await {
                    tracing::warn!(error = %e, "cannot reload the test clocks");
                }
            }
        });
    }
}
