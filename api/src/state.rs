use std::sync::Arc;

use domain::clock::SystemClock;
use domain::customer::{Customer, CustomerServices};
use projections::catch_up::CatchUpRunner;
use projections::customer_list::CustomerListProjection;
use projections::customer_uniqueness::PgCustomerUniqueness;
use projections::EventLog;
use sqlx::PgPool;

use crate::auth::KeyCache;
use crate::commands::CommandBus;

/// Everything a handler can reach: the pool, the command buses, the key cache.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub customers: Arc<CommandBus<Customer>>,
    pub keys: KeyCache,
    /// The `portal_overview` catch-up projection of this process, nudged by portal reads.
    pub portal: CatchUpRunner,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        let log = EventLog::new(
            pool.clone(),
            vec![Box::new(CustomerListProjection::default())],
        );
        let customer_services = CustomerServices {
            uniqueness: Arc::new(PgCustomerUniqueness::new(pool.clone())),
            clock: Arc::new(SystemClock),
        };
        Self {
            customers: Arc::new(CommandBus::new(log, customer_services)),
            pool,
            keys: KeyCache::default(),
            portal: CatchUpRunner::default(),
        }
    }

    /// The state with the process's running `portal_overview` projection to nudge.
    pub fn with_portal(self, portal: CatchUpRunner) -> Self {
        Self { portal, ..self }
    }
}
