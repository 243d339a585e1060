//! Reactions to the log: checkpointed, exactly-once consumers of the committed events, each run
//! by one instance at a time (`projections::catch_up`). This is where the application registers
//! them; the portal overview is the first, billing policies, outbound webhooks, the portal's
//! live stream and metrics come next. The portal's live stream is a reaction of another
//! kind: every instance tails the log for its own open streams, from the log's end, with no
//! checkpoint (`portal_stream/tailer.rs`).

use std::sync::Arc;

use projections::catch_up::{CatchUpRunners, LogConsumer};
use projections::read_models::portal_overview::PortalOverviewProjection;

use crate::context::App;
use crate::portal_stream::tailer::Tailer;
use crate::portal_stream::PortalStreams;

/// The running consumers of this process, stopped together at shutdown.
pub struct Reactions {
    runners: CatchUpRunners,
    portal_streams: PortalStreams,
    tailer: Tailer,
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
        let tailer = Tailer::start(
            app.pool.clone(),
            app.portal_streams.clone(),
            app.appends.clone(),
        );
        let reactions = Self {
            runners,
            portal_streams: app.portal_streams.clone(),
            tailer,
        };
        (reactions, app.with_portal(portal))
    }

    /// Ends the open portal streams, which would otherwise hold a graceful shutdown for as
    /// long as their pages stay open; the pages reconnect elsewhere with `Last-Event-ID`.
    pub fn end_portal_streams(&self) {
        self.portal_streams.end_all();
    }

    /// Stops every consumer and waits until each has let go.
    pub async fn stop(self) {
        self.portal_streams.end_all();
        self.tailer.stop().await;
        self.runners.stop().await;
    }
}
