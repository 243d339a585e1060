use std::sync::Arc;

use domain::clock::{Clock, SystemClock};
use domain::customer::{Customer, CustomerServices};
use domain::organization::{Organization, OrganizationServices};
use domain::payment_method::{PaymentMethod, PaymentMethodServices};
use domain::plan::{Plan, PlanServices};
use domain::subscription::{Subscription, SubscriptionServices};
use projections::catch_up::CatchUpRunner;
use projections::customer_list::CustomerListProjection;
use projections::customer_uniqueness::PgCustomerUniqueness;
use projections::organization_list::OrganizationListProjection;
use projections::payment_method_list::PaymentMethodListProjection;
use projections::plan_list::PlanListProjection;
use projections::subscription_list::SubscriptionListProjection;
use projections::EventLog;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::auth::KeyCache;
use crate::commands::CommandBus;

/// How many customers' turns can be held at once per process; more wait for one to end.
const TURN_CONNECTIONS: u32 = 4;

/// Everything a handler can reach: the pool, the command buses, the key cache.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub customers: Arc<CommandBus<Customer>>,
    pub plans: Arc<CommandBus<Plan>>,
    pub payment_methods: Arc<CommandBus<PaymentMethod>>,
    pub subscriptions: Arc<CommandBus<Subscription>>,
    pub organizations: Arc<CommandBus<Organization>>,
    pub keys: KeyCache,
    /// Connections that hold customers' turns (`customer_turns.rs`), apart from the pool the
    /// work itself uses: a turn waiting for its work's connection while holding one of the
    /// same pool could, many at once, leave none for any of them.
    pub turns: PgPool,
    /// The `portal_overview` catch-up projection of this process, nudged by portal reads.
    pub portal: CatchUpRunner,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        // Every append writes the inline read models of its aggregate in the same statement.
        let log = EventLog::new(
            pool.clone(),
            vec![
                Box::new(CustomerListProjection::default()),
                Box::new(PlanListProjection),
                Box::new(SubscriptionListProjection),
                Box::new(PaymentMethodListProjection),
                Box::new(OrganizationListProjection),
            ],
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let customer_services = CustomerServices {
            uniqueness: Arc::new(PgCustomerUniqueness::new(pool.clone())),
            clock: clock.clone(),
        };
        Self {
            customers: Arc::new(CommandBus::new(log.clone(), customer_services)),
            plans: Arc::new(CommandBus::new(
                log.clone(),
                PlanServices {
                    clock: clock.clone(),
                },
            )),
            payment_methods: Arc::new(CommandBus::new(
                log.clone(),
                PaymentMethodServices {
                    clock: clock.clone(),
                },
            )),
            subscriptions: Arc::new(CommandBus::new(
                log.clone(),
                SubscriptionServices {
                    clock: clock.clone(),
                },
            )),
            organizations: Arc::new(CommandBus::new(log, OrganizationServices { clock })),
            turns: PgPoolOptions::new()
                .max_connections(TURN_CONNECTIONS)
                .connect_lazy_with(pool.connect_options().as_ref().clone()),
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
