//! Appends of different aggregates that arrive while the log's lanes are all busy share the
//! next statement: one round trip, one executor start and one commit for many (group commit).
//!
//! Usage across many customers is one small append per request: two events, a ledger entry and
//! a grant's balance. Measured under pgbench at 32 clients, such appends ran at about 5,500 a
//! second one per statement and about 12,000 a second eight per statement on the same server:
//! the fixed cost of a statement (its start, its commit, the round trip) was most of the
//! server's work. Here at most [`EventLog::combining_appends_of`]'s `lanes` statements of the
//! combined types are in flight; an append that finds a lane free and nobody waiting runs
//! alone at once, as before; one that finds them busy waits, and whoever gets the next lane
//! appends everything waiting in one statement.
//!
//! The combined statement is atomic like any append: all of its appends commit or none. If it
//! is refused (a claim one of them breaks, such as a repeated usage key, or another process's
//! append of the same sequence) each of its appends runs again alone, and each caller gets its
//! own answer, exactly as if they had never met.
//!
//! Only aggregate types whose inline rows each belong to one aggregate may be combined (see
//! `read_models::registry::COMBINED_APPENDS`): the CTEs of one statement must never write the
//! same row twice, and two appends of one aggregate never meet, since a process runs an
//! aggregate's commands one at a time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cqrs_es::persist::{PersistenceError, SerializedEvent};
use tokio::sync::{oneshot, Semaphore};

use super::EventLog;

/// The most appends in one statement, and the most events: a statement has at most 65,535
/// parameters, and about sixteen go to each event with its inline rows.
const MAX_APPENDS: usize = 32;
const MAX_EVENTS: usize = 256;

pub(super) struct AppendCombiner {
    /// The aggregate types whose appends are combined.
    types: &'static [&'static str],
    /// One permit per statement of combined types in flight.
    lanes: Arc<Semaphore>,
    waiting: Mutex<VecDeque<Waiting>>,
    next_ticket: AtomicU64,
}

struct Waiting {
    ticket: u64,
    events: Vec<SerializedEvent>,
    answer: oneshot::Sender<Result<(), PersistenceError>>,
}

impl AppendCombiner {
    pub(super) fn new(types: &'static [&'static str], lanes: usize) -> Self {
        Self {
            types,
            lanes: Arc::new(Semaphore::new(lanes.max(1))),
            waiting: Mutex::new(VecDeque::new()),
            next_ticket: AtomicU64::new(0),
        }
    }

    pub(super) fn combines(&self, aggregate_type: &str) -> bool {
        self.types.contains(&aggregate_type)
    }

    pub(super) fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// Appends `events` (one aggregate's) through `log`, alone at once when a lane is free and
    /// nobody waits, else together with whatever waits when a lane comes free.
    pub(super) async fn append(
        &self,
        log: &EventLog,
        events: &[SerializedEvent],
    ) -> Result<(), PersistenceError> {
        if let Ok(_lane) = self.lanes.try_acquire() {
            if self.lock().is_empty() {
                return log.append_alone(events).await;
            }
        }
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.lock().push_back(Waiting {
            ticket,
            events: events.to_vec(),
            answer,
        });
        loop {
            let lane = self
                .lanes
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
            let batch = self.take();
            if batch.is_empty() {
                // An earlier lane took this append along.
                break;
            }
            let mine = batch.iter().any(|waiting| waiting.ticket == ticket);
            // Run apart from this caller: were its request dropped half-way, the others in
            // the batch would still be answered, and the lane freed only once it is done.
            let log = log.clone();
            let ran = tokio::spawn(async move {
                log.append_together(batch).await;
                drop(lane);
            })
            .await;
            if let Err(e) = ran {
                return Err(PersistenceError::UnknownError(Box::new(e)));
            }
            if mine {
                break;
            }
        }
        answered.await.unwrap_or_else(|_| {
            Err(PersistenceError::UnknownError(
                "a combined append ended without an answer".into(),
            ))
        })
    }

    /// The oldest waiting appends, within the limits of one statement (at least one).
    fn take(&self) -> Vec<Waiting> {
        let mut waiting = self.lock();
        let mut batch = Vec::new();
        let mut events = 0;
        while let Some(next) = waiting.front() {
            let fits = batch.len() < MAX_APPENDS && events + next.events.len() <= MAX_EVENTS;
            if !batch.is_empty() && !fits {
                break;
            }
            events += next.events.len();
            batch.extend(waiting.pop_front());
        }
        batch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Waiting>> {
        // Nothing panics while holding it; if something did, the queue is still whole.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventLog {
    /// Appends each of `batch` (appends of different aggregates) in one statement, or, if that
    /// statement is refused, each alone; answers each.
    async fn append_together(&self, mut batch: Vec<Waiting>) {
        if batch.len() == 1 {
            let waiting = batch.remove(0);
            let _ = waiting
                .answer
                .send(self.append_alone(&waiting.events).await);
            return;
        }
        let appends: Vec<&[SerializedEvent]> = batch.iter().map(|w| w.events.as_slice()).collect();
        match self.execute_appends(&appends).await {
            Ok(()) => {
                for waiting in batch {
                    let _ = waiting.answer.send(Ok(()));
                }
            }
            // Refused by the database, or not even built: which append was at fault, and
            // what each comes to, each finds out alone.
            Err(Combined::Refused) => {
                for waiting in batch {
                    let _ = waiting
                        .answer
                        .send(self.append_alone(&waiting.events).await);
                }
            }
            // The connection failed: whether the statement committed is unknown, as it would
            // be for any one of them alone.
            Err(Combined::Failed(e)) => {
                for waiting in batch {
                    let _ = waiting
                        .answer
                        .send(Err(PersistenceError::ConnectionError(e.to_string().into())));
                }
            }
        }
    }
}

/// Why a combined statement did not commit.
pub(super) enum Combined {
    /// The database refused it, or an inline projection could not build its part: nothing was
    /// written.
    Refused,
    /// Anything else, such as a lost connection.
    Failed(sqlx::Error),
}
