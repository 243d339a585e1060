//! The portal's live stream: tells an open portal page when anything of its customer changed
//! (a card added, by a webhook too; a payment failed; usage consumed credits; an invoice, a
//! subscription, credits granted or expired), from committed events, whichever instance wrote
//! them.
//!
//! `tailer.rs` reads the log once per process and `hub.rs` fans it out to each customer's open
//! streams. A stream is: what the page missed since its `Last-Event-ID` (read from the log),
//! then `Ready`, then each change as it is published. The page reconnects after any end (a
//! lag, its lifetime, a restart, this process dying) with the id of the last event it got,
//! and misses nothing.

pub mod hub;
pub mod tailer;

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use projections::event_store::customer_changes::{self, CommitCursor, CustomerChange};
use tokio::sync::broadcast::error::RecvError;

use crate::context::App;
use crate::error::AppError;
use crate::principal::Principal;

pub use hub::PortalStreams;

/// At most this many missed changes are replayed on a reconnect; a page further behind is
/// told to reload instead.
pub const REPLAY_LIMIT: usize = 1000;
/// Nor is a page resumed from further back than this many positions of the log: what it missed
/// is looked for among its tenant's events in between, and a `Last-Event-ID` of 0, say, would
/// otherwise read the tenant's whole log on every reconnect.
pub const REPLAY_SPAN: i64 = 100_000;
/// A stream ends after this long, and its page reconnects: the credential is checked again
/// (a session that expired meanwhile no longer streams), and nothing is missed.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// What a stream tells its page.
#[derive(Debug, Clone)]
pub enum LiveItem {
    /// Something of the customer changed: this event was committed.
    Change(Arc<CustomerChange>),
    /// Every change up to `position` has been told; the next ones follow as they commit.
    Ready { position: i64 },
    /// The stream cannot tell what the page missed (`Last-Event-ID` is no event of the log,
    /// or more than `REPLAY_LIMIT` changes were missed): the page should read everything again.
    Reload { reason: &'static str },
    /// The page read too slowly and the stream fell `hub::CHANNEL_CAPACITY` changes behind: the
    /// stream ends after this, and the page's reconnect replays what it missed from the log.
    Lagged,
}

/// How long a stream opened while the process starts waits for its tailer.
const STARTING_AT_MOST: std::time::Duration = std::time::Duration::from_secs(10);
impl App {
    /// The live stream of the portal customer the caller reaches (a session its own, a secret
    /// key the one `externalCustomerId` names), resuming after `last_event_id` when given.
    pub async fn portal_stream(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<impl Stream<Item = LiveItem> + Send + 'static, AppError> {
        let customer = self
            .portal_customer(principal, external_customer_id)
            .await?;
        let tenant = principal.tenant.key();
        let customer_id = customer.id.to_string();
        // A process just started has not found the log's end yet: a page reconnecting to it
        // waits for that, or it could not be told what it missed.
        let starting = std::time::Instant::now();
        while !self.portal_streams.is_started() {
            if starting.elapsed() > STARTING_AT_MOST {
                return Err(AppError::internal(
                    "The live stream is starting; retry in a moment",
                    "the portal stream's tailer has not started",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Subscribed before the log is read for what was missed: the channel has every change
        // after `from`, the replay every change up to it, so nothing falls between the two.
        let subscription = self.portal_streams.subscribe(&tenant, &customer_id);
        let from = subscription.from;
        let mut opening = Vec::new();
        // Live changes at or before this were told already.
        let mut told = from;
        if let Some(raw) = last_event_id {
            match self.resume_cursor(raw).await? {
                // The page has heard of more than this process has published (it was on an
                // instance further ahead): the live changes it has are skipped.
                Some(resumed) if resumed >= from => told = resumed,
                Some(resumed) if from.position - resumed.position > REPLAY_SPAN => {
                    opening.push(LiveItem::Reload {
                        reason: "too_many_missed",
                    })
                }
                Some(resumed) => {
                    let missed = customer_changes::customer_changes_between(
                        &self.pool,
                        &tenant,
                        &customer_id,
                        resumed,
                        from,
                        REPLAY_LIMIT as i64 + 1,
                    )
                    .await?;
                    if missed.len() > REPLAY_LIMIT {
                        opening.push(LiveItem::Reload {
                            reason: "too_many_missed",
                        });
                    } else {
                        opening.extend(missed.into_iter().map(|c| LiveItem::Change(Arc::new(c))));
                    }
                }
                None => opening.push(LiveItem::Reload {
                    reason: "unknown_last_event_id",
                }),
            }
        }
        opening.push(LiveItem::Ready {
            position: told.position,
        });

        let live = stream::unfold(Some((subscription, told)), |state| async move {
            let (mut subscription, told) = state?;
            loop {
                match subscription.receiver.recv().await {
                    Ok(change) if change.cursor() <= told => continue,
                    Ok(change) => {
                        return Some((LiveItem::Change(change), Some((subscription, told))))
                    }
                    // Told, then ended: the subscription (and its channel, if last) goes.
                    Err(RecvError::Lagged(_)) => return Some((LiveItem::Lagged, None)),
                    Err(RecvError::Closed) => return None,
                }
            }
        });
        let ending = self.portal_streams.ended();
        let end = async move {
            tokio::select! {
                _ = ending => {}
                _ = tokio::time::sleep(STREAM_LIFETIME) => {}
            }
        };
        Ok(stream::iter(opening).chain(live).take_until(Box::pin(end)))
    }

    /// Where a page's `Last-Event-ID` stands in commit order: `None` when it names no event.
    async fn resume_cursor(&self, raw: &str) -> Result<Option<CommitCursor>, AppError> {
        match raw.trim().parse::<i64>() {
            Ok(0) => Ok(Some(CommitCursor::START)),
            Ok(position) if position > 0 => {
                Ok(customer_changes::cursor_of(&self.pool, position).await?)
            }
            _ => Ok(None),
        }
    }

    /// This process's open portal streams.
    pub fn portal_streams(&self) -> &PortalStreams {
        &self.portal_streams
    }
}
