//! The one reader of the log per process that feeds its open portal streams: it reads the
//! settled events after its cursor, in commit order, and publishes them to the hub.
//!
//! It reads when woken, never per page: by this process's own appends (at once), by a
//! PostgreSQL NOTIFY that another instance sends after its appends, and, since notifications
//! can be lost (a listener's connection drops and comes back: sqlx#447), by a poll every
//! second whatever happens. A NOTIFY only wakes: what is new is always read from the log.
//!
//! The NOTIFY is its own statement, sent after the append has committed, not part of it: a
//! transaction that notifies holds a lock that is server-wide from its pre-commit to the end
//! of its commit, so appends that notified would commit one at a time, fsync by fsync,
//! instead of together. Bursts of appends share one NOTIFY (at most one per `NOTIFY_SPACING`).
//!
//! When the process dies the tailer dies with it; nothing of it is stored. Its streams end
//! with their connections, and their pages reconnect (to any instance) with `Last-Event-ID`.

use std::sync::Arc;
use std::time::Duration;

use projections::event_store::customer_changes::{self, TailRead};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::hub::PortalStreams;

/// The PostgreSQL channel instances wake each other on (per database, like the log).
const CHANNEL: &str = "billstream_log";
/// Events read and published per read.
const BATCH: i64 = 500;
/// How often the tailer reads even if nothing woke it: what a lost notification costs.
const FALLBACK_POLL: Duration = Duration::from_secs(1);
/// How soon it looks again when committed events are held back by a transaction older than
/// them still running elsewhere on the server: they settle as soon as it ends, and nothing
/// will notify then.
const HELD_BACK_POLL: Duration = Duration::from_millis(50);
/// The least time between two reads of the log's end while no stream is open here.
const IDLE_SPACING: Duration = Duration::from_millis(100);
/// The least time between two NOTIFYs of this process.
const NOTIFY_SPACING: Duration = Duration::from_millis(20);
/// How long to wait before trying again after the database failed.
const RETRY: Duration = Duration::from_secs(1);

/// The running tailer of this process and its wakers, stopped together.
pub struct Tailer {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Tailer {
    /// Starts reading the log from its current end into `streams`; `appends` changes with each
    /// of this process's appends.
    pub fn start(pool: PgPool, streams: PortalStreams, appends: watch::Receiver<u64>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        // Tells this process's notifications from other instances' (it hears its own too).
        let me = uuid::Uuid::new_v4().simple().to_string();
        let tasks = vec![
            tokio::spawn(until(
                stopped.clone(),
                tail(pool.clone(), streams, wake.clone()),
            )),
            tokio::spawn(until(
                stopped.clone(),
                on_own_appends(pool.clone(), appends, wake.clone(), me.clone()),
            )),
            tokio::spawn(until(stopped, on_notifications(pool, wake, me))),
        ];
        Self { stop, tasks }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn until(mut stopped: watch::Receiver<bool>, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        _ = stopped.wait_for(|stop| *stop) => {}
        _ = work => {}
    }
}

async fn tail(pool: PgPool, streams: PortalStreams, wake: Arc<Notify>) {
    // From the log's end as of now: a page that opens later resumes from its last event by
    // reading the log itself, so nothing older is ever needed here.
    loop {
        match customer_changes::head(&pool).await {
            Ok((head, _)) => {
                streams.begin_at(head);
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "portal stream: cannot read the log's end; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
    loop {
        let wait = match read_once(&pool, &streams).await {
            Ok(Next::Now) => continue,
            Ok(Next::HeldBack) => HELD_BACK_POLL,
            Ok(Next::WhenWoken) => FALLBACK_POLL,
            Err(e) => {
                tracing::warn!(error = %e, "portal stream: cannot read the log; retrying");
                RETRY
            }
        };
        // With no stream open, a read only moves the cursor to the log's end, so it need
        // not follow every append: at most one per `IDLE_SPACING`, or at once when a
        // stream opens.
        let idle = streams.is_idle();
        let woken = async {
            if idle {
                tokio::time::sleep(IDLE_SPACING).await;
            }
            wake.notified().await;
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(wait) => {}
            _ = streams.stream_opened(), if idle => {}
        }
    }
}

enum Next {
    /// A full batch was read: more may be waiting.
    Now,
    /// Committed events wait for an older transaction elsewhere to end.
    HeldBack,
    WhenWoken,
}

async fn read_once(pool: &PgPool, streams: &PortalStreams) -> Result<Next, sqlx::Error> {
    if streams.is_idle() {
        // No stream open here: nothing to read events for, only the place to move to, so that
        // the next stream starts at the log's end.
        let (head, held_back) = customer_changes::head(pool).await?;
        if streams.skip_to(head) {
            return Ok(if held_back {
                Next::HeldBack
            } else {
                Next::WhenWoken
            });
        }
    }
    let mut connection = pool.acquire().await?;
    let TailRead { settled, held_back } =
        customer_changes::settled_after(&mut connection, streams.cursor(), BATCH).await?;
    drop(connection);
    let full = settled.len() as i64 == BATCH;
    streams.publish(settled);
    Ok(if full {
        Next::Now
    } else if held_back {
        Next::HeldBack
    } else {
        Next::WhenWoken
    })
}

/// Wakes the tailer at once on this process's own appends, and the other instances through
/// a NOTIFY.
async fn on_own_appends(
    pool: PgPool,
    mut appends: watch::Receiver<u64>,
    wake: Arc<Notify>,
    me: String,
) {
    while appends.changed().await.is_ok() {
        wake.notify_one();
        // The notifying statement commits without waiting for its flush: it changes no data,
        // and a lost notification is made up for by the poll.
        let sent =
            sqlx::query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&me)
                .execute(&pool)
                .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, "portal stream: cannot notify the other instances");
        }
        tokio::time::sleep(NOTIFY_SPACING).await;
    }
}

/// Wakes the tailer when another instance has appended.
async fn on_notifications(pool: PgPool, wake: Arc<Notify>, me: String) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "portal stream: cannot listen; polling meanwhile");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "portal stream: cannot listen; polling meanwhile");
            tokio::time::sleep(RETRY).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) if notification.payload() == me => {}
                // Another instance appended; or (`None`) the connection dropped and is made
                // again on the next call, and what was sent meanwhile is lost: read anyway.
                Ok(_) => wake.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, "portal stream: listening failed; polling meanwhile");
                    tokio::time::sleep(RETRY).await;
                    break;
                }
            }
        }
    }
}
