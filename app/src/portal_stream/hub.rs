//! The fan-out of one process: the tailer publishes each committed event here, and each open
//! stream holds a receiver of its own customer's channel only. Another tenant's or customer's
//! events are never sent to a stream's channel, so no stream can see them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use projections::event_store::customer_changes::{CommitCursor, CustomerChange};
use tokio::sync::{broadcast, watch};

/// Events a customer's channel holds for its slowest stream. A stream that falls further
/// behind is told so and closed (see `LiveItem::Lagged`): memory per customer is bounded
/// whatever its clients do, and the page's reconnect replays the gap from the log.
pub const CHANNEL_CAPACITY: usize = 64;

/// How often an idle stream sends a comment line, so proxies do not close it as dead.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// The open streams of this process, by tenant and customer, and how far the log has been
/// published to them. Cloning shares it.
#[derive(Clone)]
pub struct PortalStreams {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<Published>,
    heartbeat: Duration,
    /// Set when the process stops serving: open streams end (their pages reconnect to another
    /// instance, or to this one once it is back, with `Last-Event-ID`).
    ending: watch::Sender<bool>,
    /// Told when a stream opens: an idle tailer reads at once rather than at its next turn.
    opened: tokio::sync::Notify,
}

/// Guarded together so that a new subscriber learns exactly where its channel's events begin.
struct Published {
    /// Every settled event up to here has been published; the next published comes after.
    cursor: CommitCursor,
    /// Whether the tailer has found where the log ends: before that, the cursor says nothing
    /// of what was published, and a resuming stream could not tell what it missed.
    started: bool,
    channels: HashMap<String, HashMap<String, broadcast::Sender<Arc<CustomerChange>>>>,
}

impl Default for PortalStreams {
    fn default() -> Self {
        Self::with_heartbeat(DEFAULT_HEARTBEAT)
    }
}

/// A stream's view of its customer's channel: every event published after `from`.
pub struct Subscription {
    pub receiver: broadcast::Receiver<Arc<CustomerChange>>,
    pub from: CommitCursor,
    /// Declared after the receiver, so it is dropped first and the channel is seen unused.
    _leave: Leave,
}

/// Removes a customer's channel once its last stream is gone.
struct Leave {
    streams: PortalStreams,
    tenant: String,
    customer_id: String,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut state = self.streams.state();
        if let Some(customers) = state.channels.get_mut(&self.tenant) {
            if customers
                .get(&self.customer_id)
                .is_some_and(|channel| channel.receiver_count() == 0)
            {
                customers.remove(&self.customer_id);
            }
            if customers.is_empty() {
                state.channels.remove(&self.tenant);
            }
        }
    }
}

impl PortalStreams {
    pub fn with_heartbeat(heartbeat: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(Published {
                    cursor: CommitCursor::START,
                    started: false,
                    channels: HashMap::new(),
                }),
                heartbeat,
                ending: watch::Sender::new(false),
                opened: tokio::sync::Notify::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, Published> {
        // Nothing panics while holding it; if something did, the map is still whole.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn heartbeat(&self) -> Duration {
        self.inner.heartbeat
    }

    /// Subscribes to the customer's channel, and says after which event of the log it starts:
    /// every event concerning the customer after that is sent to it, none before.
    pub fn subscribe(&self, tenant: &str, customer_id: &str) -> Subscription {
        self.inner.opened.notify_one();
        let mut state = self.state();
        let receiver = state
            .channels
            .entry(tenant.to_owned())
            .or_default()
            .entry(customer_id.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        Subscription {
            receiver,
            from: state.cursor,
            _leave: Leave {
                streams: self.clone(),
                tenant: tenant.to_owned(),
                customer_id: customer_id.to_owned(),
            },
        }
    }

    /// Publishes `changes` (settled, in commit order, right after the cursor) to the streams
    /// of their customers, and moves the cursor past them, in one step for subscribers.
    pub(crate) fn publish(&self, changes: Vec<CustomerChange>) {
        let mut state = self.state();
        for change in changes {
            state.cursor = change.cursor();
            let (Some(tenant), Some(customer)) = (&change.tenant, &change.customer_id) else {
                continue;
            };
            if let Some(channel) = state
                .channels
                .get(tenant)
                .and_then(|customers| customers.get(customer))
            {
                // Fails only when its last stream has just gone: nobody to tell.
                let _ = channel.send(Arc::new(change));
            }
        }
    }

    /// Where the tailer starts: every stream's events come after `head`.
    pub(crate) fn begin_at(&self, head: CommitCursor) {
        let mut state = self.state();
        state.cursor = state.cursor.max(head);
        state.started = true;
    }

    /// Whether the tailer has started (see `Published::started`).
    pub(crate) fn is_started(&self) -> bool {
        self.state().started
    }

    /// Moves the cursor to `head` without reading what lies before it, when no stream is open
    /// to care; answers whether it did (a stream opened meanwhile needs the events read).
    pub(crate) fn skip_to(&self, head: CommitCursor) -> bool {
        let mut state = self.state();
        if !state.channels.is_empty() {
            return false;
        }
        state.cursor = state.cursor.max(head);
        true
    }

    /// Resolves when a stream opens (or has opened since the last call).
    pub(crate) async fn stream_opened(&self) {
        self.inner.opened.notified().await;
    }

    /// Whether any stream is open in this process.
    pub(crate) fn is_idle(&self) -> bool {
        self.state().channels.is_empty()
    }

    pub(crate) fn cursor(&self) -> CommitCursor {
        self.state().cursor
    }

    /// How many customers have a stream open here (for the benchmark and tests).
    pub fn customers_streaming(&self) -> usize {
        self.state().channels.values().map(HashMap::len).sum()
    }

    /// Ends every open stream of this process, now and from now on.
    pub fn end_all(&self) {
        self.inner.ending.send_replace(true);
    }

    /// Resolves once the process has stopped serving streams.
    pub fn ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ending = self.inner.ending.subscribe();
        async move {
            let _ = ending.wait_for(|ending| *ending).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(position: i64, tenant: &str, customer: &str) -> CustomerChange {
        CustomerChange {
            transaction_id: 100 + position,
            position,
            tenant: Some(tenant.into()),
            customer_id: Some(customer.into()),
            aggregate_type: "Customer".into(),
            aggregate_id: customer.into(),
            event_type: "CustomerDetailsUpdated".into(),
            recorded_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn a_stream_gets_its_own_customers_changes_after_its_start_and_no_others() {
        let streams = PortalStreams::default();
        streams.publish(vec![change(1, "t1", "c1")]);
        let mut mine = streams.subscribe("t1", "c1");
        assert_eq!(mine.from.position, 1, "starts after what was published");
        streams.publish(vec![
            change(2, "t1", "c2"),
            change(3, "t2", "c1"),
            change(4, "t1", "c1"),
        ]);
        let told = mine.receiver.recv().await.unwrap();
        assert_eq!(told.position, 4);
        assert!(mine.receiver.try_recv().is_err(), "nothing else");
        assert_eq!(streams.cursor().position, 4);
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_told_and_a_customers_channel_goes_with_its_last_stream()
    {
        let streams = PortalStreams::default();
        let mut slow = streams.subscribe("t1", "c1");
        let other = streams.subscribe("t1", "c1");
        assert_eq!(streams.customers_streaming(), 1);
        let flood = (1..=CHANNEL_CAPACITY as i64 + 10)
            .map(|p| change(p, "t1", "c1"))
            .collect();
        streams.publish(flood);
        assert!(matches!(
            slow.receiver.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
        drop(slow);
        assert_eq!(streams.customers_streaming(), 1, "one stream is still open");
        drop(other);
        assert_eq!(streams.customers_streaming(), 0);
        assert!(streams.is_idle());
    }
}
