//! The scheduler inside `billstream serve`: every second it does, for every tenant with a live
//! subscription, the billing work that has fallen due by that tenant's clock (renewals,
//! retries, grace ends, cancellations at period end: `billing_cycle.rs`). One instance at a
//! time owns it — the holder of a session advisory lock on a connection of its own — and
//! another takes over within a second or two of the owner's death; a crash resumes where it
//! stopped, since the work is read from the read models and each piece is a recorded flow.
//! (Two schedulers at once, for a moment, would still bill each period once: see the flows.)

use std::time::Duration;

use domain::id::PaymentId;
use domain::tenant::Tenant;
use projections::read_models::billing_schedule;
use sqlx::{Connection, PgConnection};

use crate::charges::ChargeOutcome;
use crate::context::App;
use crate::principal::{CommandMetadata, Principal};

/// The advisory lock whose holder owns the scheduler ("bsch").
pub(crate) const SCHEDULER_LOCK: i64 = 0x6273_6368;
const TICK: Duration = Duration::from_secs(1);
/// Pieces of work one tick does per tenant at most, so one tenant cannot hold up the rest.
const PER_TENANT_PER_TICK: usize = 1000;

impl App {
    /// Does, for every tenant, what has fallen due by its clock; returns how many pieces.
    pub async fn run_scheduler_once(&self) -> usize {
        let tenants = match billing_schedule::tenants(&self.pool).await {
            Ok(tenants) => tenants,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: cannot list tenants");
                return 0;
            }
        };
        let mut done = 0;
        for key in tenants {
            let Some(tenant) = Tenant::from_key(&key) else {
                continue;
            };
            match self.run_due_now(&tenant, PER_TENANT_PER_TICK).await {
                Ok(ran) => done += ran,
                // Left for the next tick (a recorded flow is resumed by then anyway).
                Err(e) => tracing::warn!(error = %e, tenant = key, "scheduler: due work failed"),
            }
            done += self.settle_pending(&tenant).await;
        }
        done
    }

    /// Asks the provider again about the tenant's charges pending for over a minute (by its
    /// clock), once each per tick: the same payment id, so the provider charges once.
    async fn settle_pending(&self, tenant: &Tenant) -> usize {
        let before = self.clock.now_for(tenant) - chrono::Duration::minutes(1);
        let pending =
            match billing_schedule::pending_payments(&self.pool, tenant, before, 100).await {
                Ok(pending) => pending,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler: cannot read pending payments");
                    return 0;
                }
            };
        let metadata = CommandMetadata::acting_as(Principal {
            tenant: tenant.clone(),
            key_id: "scheduler".into(),
            session: None,
        });
        let mut settled = 0;
        for id in pending {
            let Ok(id) = PaymentId::parse(&id) else {
                continue;
            };
            match self.complete_charge(&metadata, &id).await {
                Ok(ChargeOutcome::Pending { .. }) => {}
                Ok(_) => settled += 1,
                Err(e) => tracing::warn!(error = %e, payment = %id, "scheduler: cannot settle"),
            }
        }
        settled
    }

    /// Runs the scheduler every second while this instance owns it, until the process ends.
    /// One connection of its own asks for the lock each tick until it gets it, and holds it.
    pub fn spawn_scheduler(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            let mut connection: Option<PgConnection> = None;
            let mut owner = false;
            let mut tick = tokio::time::interval(TICK);
            loop {
                tick.tick().await;
                if connection.is_none() {
                    connection = PgConnection::connect_with(&app.pool.connect_options())
                        .await
                        .ok();
                    owner = false;
                }
                let Some(held) = connection.as_mut() else {
                    continue;
                };
                let asked = if owner {
                    // A lost connection ends the ownership (and the lock with it).
                    held.ping().await.map(|()| true)
                } else {
                    sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                        .bind(SCHEDULER_LOCK)
                        .fetch_one(&mut *held)
                        .await
                };
                match asked {
                    Ok(true) => owner = true,
                    Ok(false) => continue,
                    Err(_) => {
                        connection = None;
                        continue;
                    }
                }
                app.run_scheduler_once().await;
            }
        });
    }
}
