//! Commands of one aggregate that arrive while another of its commands holds the aggregate's
//! turn are appended together when the turn comes: one statement, one commit, for all of them.
//!
//! A busy credit ledger (every usage of one customer's feature) would otherwise commit its
//! usages one by one, each waiting for its own flush to disk: about 1.6 ms each, so some 600
//! usages a second whatever the machine. Queued behind the turn in flight, they share the next
//! commit instead.
//!
//! Each command is decided in arrival order on the state the previous one left, exactly as if
//! they had run one by one; each caller gets its own answer (the state its own command left,
//! or its own refusal). Each event keeps its own command's metadata. Whatever the batch cannot
//! prove about itself is settled by running its commands one at a time, the usual way: a batch
//! whose append is refused (a claim one of them breaks, such as a repeated usage key, or
//! another process's append), or whose commands a remembered state refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, EventEnvelope};
use tokio::sync::oneshot;

use crate::command_runner::{CommandRunner, Loaded};
use crate::principal::CommandMetadata;

/// The most commands appended in one statement: the statement grows with each (its events
/// and every inline projection's rows), and a caller should not wait behind a huge one.
const MAX_BATCH: usize = 64;

type Answer<A> = Result<A, AggregateError<<A as Aggregate>::Error>>;

/// The commands waiting for their aggregate's turn, by aggregate.
pub(crate) struct CommandQueues<A: Aggregate> {
    waiting: Mutex<HashMap<String, Vec<Queued<A>>>>,
    next_ticket: AtomicU64,
}

impl<A: Aggregate> Default for CommandQueues<A> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
            next_ticket: AtomicU64::new(0),
        }
    }
}

struct Queued<A: Aggregate> {
    ticket: u64,
    command: A::Command,
    metadata: CommandMetadata,
    answer: oneshot::Sender<Answer<A>>,
}

impl<A: Aggregate> CommandQueues<A> {
    fn push(&self, aggregate_id: &str, queued: Queued<A>) {
        self.lock()
            .entry(aggregate_id.to_owned())
            .or_default()
            .push(queued);
    }

    /// The oldest waiting commands of the aggregate, at most [`MAX_BATCH`].
    fn take(&self, aggregate_id: &str) -> Vec<Queued<A>> {
        let mut waiting = self.lock();
        let Some(queue) = waiting.get_mut(aggregate_id) else {
            return Vec::new();
        };
        let batch: Vec<Queued<A>> = queue.drain(..queue.len().min(MAX_BATCH)).collect();
        if queue.is_empty() {
            waiting.remove(aggregate_id);
        }
        batch
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Queued<A>>>> {
        // Nothing panics while holding it; if something did, the queues are still whole.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one command of a batch came to.
enum Decided<A: Aggregate> {
    /// Accepted: the state it left, and whether it emitted any event (a command that changed
    /// nothing, decided on remembered state, is decided again on a fresh load).
    Done {
        after: A,
        changed: bool,
    },
    Refused(A::Error),
}

impl<A> CommandRunner<A>
where
    A: Aggregate + Clone,
    A::Command: Clone + std::fmt::Debug,
{
    /// Like [`execute`](Self::execute), but appended together with the commands of the same
    /// aggregate queued meanwhile (see the module's comment). A step of a flow runs alone, as
    /// `execute` runs it: a resumed flow looks for each of its steps by itself.
    pub async fn execute_coalesced(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Answer<A> {
        if metadata.flow.is_some() {
            return self.execute(aggregate_id, command, metadata).await;
        }
        let ticket = self.queues.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.queues.push(
            aggregate_id,
            Queued {
                ticket,
                command,
                metadata: metadata.clone(),
                answer,
            },
        );
        {
            // Whoever holds the turn next runs what is queued, this command among it unless an
            // earlier holder ran it already.
            let _turn = self.locks.lock(aggregate_id).await;
            loop {
                let batch = self.queues.take(aggregate_id);
                if batch.is_empty() {
                    break;
                }
                let mine = batch.iter().any(|queued| queued.ticket == ticket);
                self.run_batch(aggregate_id, batch).await;
                if mine {
                    break;
                }
            }
        }
        answered.await.unwrap_or_else(|_| {
            Err(AggregateError::UnexpectedError(
                "a queued command was dropped unanswered".into(),
            ))
        })
    }

    /// Runs `batch` (commands of one aggregate, oldest first) while holding its turn, and
    /// answers each.
    async fn run_batch(&self, aggregate_id: &str, mut batch: Vec<Queued<A>>) {
        if batch.len() == 1 {
            let queued = batch.remove(0);
            let answer = self
                .run_in_turn(aggregate_id, queued.command, &queued.metadata, false)
                .await;
            let _ = queued.answer.send(answer);
            return;
        }
        let mut from_memory = self.cached(aggregate_id);
        loop {
            let remembered = from_memory.take();
            let was_remembered = remembered.is_some();
            let loaded = match remembered {
                Some(loaded) => loaded,
                None => match self.load(aggregate_id).await {
                    Ok(loaded) => loaded,
                    Err(_) => return self.run_one_by_one(aggregate_id, batch).await,
                },
            };
            let (decided, envelopes, state) =
                self.decide_in_order(aggregate_id, &loaded, &batch).await;
            // A refusal or a no-op decided on remembered state may be another process's doing
            // since: decided again on a fresh load.
            let unsure = decided
                .iter()
                .any(|d| !matches!(d, Decided::Done { changed: true, .. }));
            if was_remembered && unsure {
                self.remember(aggregate_id, None);
                continue;
            }
            let sequence = loaded.sequence + envelopes.len();
            if !envelopes.is_empty() {
                let appended = match serialize(&envelopes) {
                    Ok(events) => self.log.persist::<A>(&events, None).await,
                    Err(e) => Err(e),
                };
                if appended.is_err() {
                    self.remember(aggregate_id, None);
                    if was_remembered {
                        continue;
                    }
                    // Which command broke the append is for each to find out alone.
                    return self.run_one_by_one(aggregate_id, batch).await;
                }
                self.keep_committed(
                    aggregate_id,
                    Loaded {
                        aggregate: state,
                        sequence,
                        snapshot_sequence: loaded.snapshot_sequence,
                    },
                )
                .await;
            }
            for (queued, decided) in batch.into_iter().zip(decided) {
                let answer = match decided {
                    Decided::Done { after, .. } => Ok(after),
                    Decided::Refused(e) => Err(AggregateError::UserError(e)),
                };
                let _ = queued.answer.send(answer);
            }
            return;
        }
    }

    /// Decides each command of `batch` in order, each on the state the one before left:
    /// what each came to, the events to append, and the state after them all.
    async fn decide_in_order(
        &self,
        aggregate_id: &str,
        loaded: &Loaded<A>,
        batch: &[Queued<A>],
    ) -> (Vec<Decided<A>>, Vec<EventEnvelope<A>>, A) {
        let mut state = loaded.aggregate.clone();
        let mut sequence = loaded.sequence;
        let mut decided = Vec::with_capacity(batch.len());
        let mut envelopes = Vec::new();
        for queued in batch {
            // A refused command may have applied some of its events before refusing: the next
            // one starts from the state before it.
            let before = state.clone();
            let sink = EventSink::default();
            match state
                .handle(queued.command.clone(), &self.services, &sink)
                .await
            {
                Ok(()) => {
                    let events = sink.collect().await;
                    let changed = !events.is_empty();
                    let metadata = queued.metadata.to_map();
                    for payload in events {
                        sequence += 1;
                        envelopes.push(EventEnvelope {
                            aggregate_id: aggregate_id.to_owned(),
                            sequence,
                            payload,
                            metadata: metadata.clone(),
                        });
                    }
                    decided.push(Decided::Done {
                        after: state.clone(),
                        changed,
                    });
                }
                Err(e) => {
                    state = before;
                    decided.push(Decided::Refused(e));
                }
            }
        }
        (decided, envelopes, state)
    }

    async fn run_one_by_one(&self, aggregate_id: &str, batch: Vec<Queued<A>>) {
        for queued in batch {
            let answer = self
                .run_in_turn(aggregate_id, queued.command, &queued.metadata, false)
                .await;
            let _ = queued.answer.send(answer);
        }
    }
}

fn serialize<A: Aggregate>(
    envelopes: &[EventEnvelope<A>],
) -> Result<Vec<SerializedEvent>, cqrs_es::persist::PersistenceError> {
    envelopes.iter().map(SerializedEvent::try_from).collect()
}
