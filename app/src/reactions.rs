//! Reactions to the log: checkpointed, exactly-once consumers of the committed events, each run
//! by one instance at a time (`projections::catch_up`). This is where the application registers
//! them; the portal overview is the first, billing policies, outbound webhooks, the portal's
//! live stream and metrics come next.

use std::sync::Arc;

use projections::catch_up::{CatchUpRunners, LogConsumer};
use projections::read_models::portal_overview::PortalOverviewProjection;

use crate::context::App;

/// The running consumers of this process, stopped together at shutdown.
pub struct Reactions {
    runners: CatchUpRunners,
}

/// Every consumer of the log the service runs.
fn consumers() -> Vec<Arc<dyn LogConsumer>> {
    vec![Arc::new(PortalOverviewProjection::default())]
}

impl Reactions {
    /// Starts every consumer (each becomes the owner or waits as a standby) and hands back the
    /// app wired to nudge them.
    pub fn start(app: App) -> (Self, App) {
        let (runners, mut handles) = CatchUpRunners::spawn(&app.pool, consumers());
        // `consumers()` lists the portal overview first.
        let portal = handles.remove(0);
        (Self { runners }, app.with_portal(portal))
    }

    /// Stops every consumer and waits until each has let go.
    pub async fn stop(self) {
        self.runners.stop().await;
    }
}
