//! The command runner: runs commands against aggregates through cqrs-es's event store, and hands back the
//! aggregate as the command left it, so a handler can answer without reading again.
//!
//! Loading is ours rather than cqrs-es's: an aggregate starts from its latest snapshot (if
//! any) and folds only the events after it, so long histories stay cheap. Appends go through
//! cqrs-es's store.
//!
//! A runner may keep the state its commands left in memory ([`CommandRunner::with_state_cache`]:
//! the hot credit ledgers, and the subscriptions, invoices and payments a renewal commands
//! several times): the next command starts from it without reading the log. That
//! is safe because an append names the sequence it follows: if another process appended
//! meanwhile, the append collides and the command is run again on a fresh load. What the
//! cached state alone cannot prove — a refusal, or a command that changes nothing — is
//! decided again on a fresh load before it is answered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{
    EventStoreAggregateContext, PersistedEventRepository, PersistedEventStore, SerializedEvent,
};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use hashlink::LruCache;
use projections::event_store::feed;
use projections::event_store::snapshots::{self, Snapshot, SnapshotAndEvents};
use projections::EventLog;

use crate::aggregate_locks::AggregateLocks;
use crate::coalesced_commands::CommandQueues;
use crate::principal::CommandMetadata;

/// How often a command that lost a race for its aggregate (to another process: within this
/// one, commands on an aggregate take turns) is tried again before the caller gets a 409.
/// Each try reloads the aggregate, so the rules see the winner's events.
const MAX_ATTEMPTS: u32 = 10;

/// A snapshot is taken once this many events have been appended since the last one. A load
/// replays half as many on average: with loads at one round trip (`statement_pool.rs`), 100
/// made a command on a customer of 10,000 events cost 1.48 times one on a new customer (the
/// benchmark's long history; target at most 1.5), most of it decoding the replayed events.
pub const SNAPSHOT_EVERY: usize = 50;

/// The shape of aggregate state that snapshots hold. Bump it whenever an aggregate's fields or
/// its `apply` change: snapshots of another schema are ignored and rebuilt by replay. (3: an
/// invoice keeps the renderer of its PDF; a snapshot without it would read as renderer 1.)
pub const SNAPSHOT_SCHEMA: i32 = 3;

/// Runs the commands of one aggregate type: load (from its snapshot), one command at a time
/// per aggregate in this process, append, retry on a conflict with another process, snapshot.
pub struct CommandRunner<A: Aggregate> {
    pub(crate) log: EventLog,
    store: PersistedEventStore<EventLog, A>,
    pub(crate) services: A::Services,
    pub(crate) locks: AggregateLocks,
    /// Commands waiting for their aggregate's turn, to be appended together
    /// (`coalesced_commands.rs`).
    pub(crate) queues: CommandQueues<A>,
    /// The state each of the most recently commanded aggregates was left in; none unless
    /// asked for.
    states: Option<Mutex<LruCache<String, Loaded<A>>>>,
}

/// A command decided but not yet appended ([`CommandRunner::decide`]).
pub(crate) struct Decided<A> {
    /// What the command appends, as the log stores it.
    pub(crate) events: Vec<SerializedEvent>,
    /// The aggregate as those events leave it.
    pub(crate) after: Loaded<A>,
}

/// An aggregate as loaded: its state, the sequence of its last event, and the sequence its
/// snapshot (if any) was taken at.
#[derive(Clone)]
pub(crate) struct Loaded<A> {
    pub(crate) aggregate: A,
    pub(crate) sequence: usize,
    pub(crate) snapshot_sequence: usize,
}

impl<A: Default> Loaded<A> {
    /// The state of an aggregate never written.
    pub(crate) fn new() -> Self {
        Loaded {
            aggregate: A::default(),
            sequence: 0,
            snapshot_sequence: 0,
        }
    }
}

impl<A> CommandRunner<A>
where
    A: Aggregate + Clone,
    A::Command: Clone + std::fmt::Debug,
{
    pub fn new(log: EventLog, services: A::Services) -> Self {
        Self {
            store: PersistedEventStore::new_event_store(log.clone()),
            log,
            services,
            locks: AggregateLocks::default(),
            queues: CommandQueues::default(),
            states: None,
        }
    }

    /// The runner keeping, in memory, the state its commands left in up to `capacity`
    /// aggregates, to start their next command from (see the module's comment).
    pub fn with_state_cache(self, capacity: usize) -> Self {
        Self {
            states: Some(Mutex::new(LruCache::new(capacity))),
            ..self
        }
    }

    pub(crate) fn cached(&self, aggregate_id: &str) -> Option<Loaded<A>> {
        let states = self.states.as_ref()?;
        states
            .lock()
            .expect("aggregate states")
            .get(aggregate_id)
            .cloned()
    }

    pub(crate) fn remember(&self, aggregate_id: &str, loaded: Option<Loaded<A>>) {
        let Some(states) = &self.states else {
            return;
        };
        let mut states = states.lock().expect("aggregate states");
        match loaded {
            Some(loaded) => {
                states.insert(aggregate_id.to_owned(), loaded);
            }
            None => {
                states.remove(aggregate_id);
            }
        }
    }

    /// Loads the aggregate, lets it handle the command and appends what it emitted, retrying
    /// on a concurrent append. Returns the aggregate after the command. In a resumed flow, a
    /// command whose aggregate already has an event of the flow at the command's step happened
    /// in an earlier run: it is skipped, and the aggregate returned as it is.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<A, AggregateError<A::Error>> {
        self.run(aggregate_id, command, metadata, false).await
    }

    /// Like [`execute`](Self::execute), for an id generated just now: the first try skips
    /// loading the (certainly empty) history. Should the id exist after all, the append
    /// collides on its first sequence number and the retry loads it.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<A, AggregateError<A::Error>> {
        self.run(aggregate_id, command, metadata, true).await
    }

    /// The aggregate's events, decoded.
    pub async fn history(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.events_after(aggregate_id, 0).await
    }

    /// The aggregate's current state as commands see it: from its snapshot and the events
    /// after it.
    pub async fn current(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>> {
        Ok(self.load(aggregate_id).await?.aggregate)
    }

    /// `known`, the aggregate as the caller's own command just left it, or without it the
    /// current state. (Only a state just committed will do: one remembered from earlier may
    /// be stale.)
    pub async fn known_or_current(
        &self,
        aggregate_id: &str,
        known: Option<A>,
    ) -> Result<A, AggregateError<A::Error>> {
        match known {
            Some(aggregate) => Ok(aggregate),
            None => self.current(aggregate_id).await,
        }
    }

    /// The aggregate's current state folded from every event, ignoring snapshots.
    pub async fn replayed(&self, aggregate_id: &str) -> Result<A, AggregateError<A::Error>> {
        let mut aggregate = A::default();
        for envelope in self.history(aggregate_id).await? {
            aggregate.apply(envelope.payload);
        }
        Ok(aggregate)
    }

    /// The events after `sequence`, decoded. (When an event gets a second version, its
    /// upcaster applies here, before decoding.)
    async fn events_after(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.serialized_after(aggregate_id, sequence)
            .await?
            .into_iter()
            .map(|event| EventEnvelope::<A>::try_from(event).map_err(AggregateError::from))
            .collect()
    }

    pub(crate) async fn load(
        &self,
        aggregate_id: &str,
    ) -> Result<Loaded<A>, AggregateError<A::Error>> {
        let read = snapshots::load_with_events(
            self.log.statements(),
            A::TYPE,
            aggregate_id,
            SNAPSHOT_SCHEMA,
        )
        .await?;
        self.fold(aggregate_id, read).await
    }

    /// [`load`](Self::load) for each of `aggregate_ids`, in one round trip (an id never
    /// written comes back as a new aggregate's state).
    pub(crate) async fn load_many(
        &self,
        aggregate_ids: &[String],
    ) -> Result<HashMap<String, Loaded<A>>, AggregateError<A::Error>> {
        let mut read = snapshots::load_many_with_events(
            self.log.statements(),
            A::TYPE,
            aggregate_ids,
            SNAPSHOT_SCHEMA,
        )
        .await?;
        let mut loaded = HashMap::with_capacity(aggregate_ids.len());
        for id in aggregate_ids {
            let read = read.remove(id).unwrap_or(SnapshotAndEvents {
                snapshot: None,
                events: Vec::new(),
            });
            loaded.insert(id.clone(), self.fold(id, read).await?);
        }
        Ok(loaded)
    }

    /// The state `read` (a snapshot and the events after it) folds to.
    async fn fold(
        &self,
        aggregate_id: &str,
        read: SnapshotAndEvents,
    ) -> Result<Loaded<A>, AggregateError<A::Error>> {
        let start = read.snapshot.map(|s| {
            let state = serde_json::from_value::<A>(s.state).ok();
            (state, usize::try_from(s.sequence).unwrap_or_default())
        });
        let (mut aggregate, snapshot_sequence, events) = match start {
            Some((Some(aggregate), sequence)) => (aggregate, sequence, read.events),
            // A snapshot that no longer decodes is as good as none: replay instead.
            Some((None, _)) => (
                A::default(),
                0,
                self.serialized_after(aggregate_id, 0).await?,
            ),
            None => (A::default(), 0, read.events),
        };
        let mut sequence = snapshot_sequence;
        for event in events {
            let envelope = EventEnvelope::<A>::try_from(event).map_err(AggregateError::from)?;
            sequence = envelope.sequence;
            aggregate.apply(envelope.payload);
        }
        Ok(Loaded {
            aggregate,
            sequence,
            snapshot_sequence,
        })
    }

    /// Decides `command` on `loaded` (aggregate `aggregate_id` as just read) without
    /// appending: the events it would append, numbered after `loaded`'s and carrying
    /// `metadata`, and the state they leave. For commands whose events are appended together
    /// with other aggregates' in one statement ([`EventLog::append_atomically`]: a renewal in
    /// bulk); once that has committed, [`keep_committed`](Self::keep_committed) takes over.
    pub(crate) async fn decide(
        &self,
        aggregate_id: &str,
        loaded: Loaded<A>,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Decided<A>, AggregateError<A::Error>> {
        let Loaded {
            mut aggregate,
            mut sequence,
            snapshot_sequence,
        } = loaded;
        let sink = EventSink::default();
        aggregate
            .handle(command, &self.services, &sink)
            .await
            .map_err(AggregateError::UserError)?;
        let recorded = metadata.to_map();
        let mut events = Vec::new();
        for payload in sink.collect().await {
            sequence += 1;
            let envelope = EventEnvelope::<A> {
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                payload,
                metadata: recorded.clone(),
            };
            events.push(SerializedEvent::try_from(&envelope)?);
        }
        Ok(Decided {
            events,
            after: Loaded {
                aggregate,
                sequence,
                snapshot_sequence,
            },
        })
    }

    /// After the events of `decided` have committed (appended by the caller): snapshots the
    /// state they left when it is time, and keeps it for the aggregate's next command.
    pub(crate) async fn keep_committed(&self, aggregate_id: &str, decided: Loaded<A>) {
        let snapshotted = self
            .maybe_snapshot(
                aggregate_id,
                &decided.aggregate,
                decided.sequence,
                decided.snapshot_sequence,
            )
            .await;
        self.remember(
            aggregate_id,
            Some(Loaded {
                snapshot_sequence: snapshotted.unwrap_or(decided.snapshot_sequence),
                ..decided
            }),
        );
    }

    /// The events after `sequence`, as stored (upcast, not yet decoded).
    async fn serialized_after(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Vec<cqrs_es::persist::SerializedEvent>, AggregateError<A::Error>> {
        Ok(self
            .log
            .get_last_events::<A>(aggregate_id, sequence)
            .await?)
    }

    /// Snapshots the state a command left, when enough events have gathered since the last
    /// snapshot. The command has committed already: a failure here is logged, not returned.
    /// Returns the sequence of the snapshot it took, if it took one.
    pub(crate) async fn maybe_snapshot(
        &self,
        aggregate_id: &str,
        state: &A,
        sequence: usize,
        since: usize,
    ) -> Option<usize> {
        if sequence - since < SNAPSHOT_EVERY {
            return None;
        }
        let snapshot = match serde_json::to_value(state) {
            Ok(state) => Snapshot {
                sequence: sequence as i64,
                state,
            },
            Err(e) => {
                tracing::warn!(error = %e, aggregate_id, "cannot encode a snapshot");
                return None;
            }
        };
        if let Err(e) = snapshots::save(
            self.log.pool(),
            A::TYPE,
            aggregate_id,
            SNAPSHOT_SCHEMA,
            &snapshot,
        )
        .await
        {
            tracing::warn!(error = %e, aggregate_id, "cannot save a snapshot");
            return None;
        }
        Some(sequence)
    }

    async fn run(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        fresh_id: bool,
    ) -> Result<A, AggregateError<A::Error>> {
        // A fresh id has no other writer to wait for.
        let _turn = if fresh_id && metadata.flow.as_ref().is_none_or(|flow| !flow.resuming) {
            None
        } else {
            Some(self.locks.lock(aggregate_id).await)
        };
        self.run_in_turn(aggregate_id, command, metadata, fresh_id)
            .await
    }

    /// [`run`](Self::run) once the aggregate's turn is this command's (or, for a fresh id, no
    /// turn is needed).
    pub(crate) async fn run_in_turn(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        fresh_id: bool,
    ) -> Result<A, AggregateError<A::Error>> {
        // A resumed flow's command may have happened in an earlier run: it is looked for.
        let resumed_flow = metadata.flow.as_ref().filter(|flow| flow.resuming);
        let fresh_id = fresh_id && resumed_flow.is_none();
        let mut recorded = metadata.to_map();
        let step = metadata
            .flow
            .as_ref()
            .map(|flow| flow.next_step(A::TYPE, aggregate_id, &command_kind(&command)));
        if let Some(step) = &step {
            recorded.insert("flowStep".to_owned(), step.clone());
        }
        let mut attempt = 0;
        // A resumed flow reads what its earlier run wrote: never from memory.
        let mut from_memory = if resumed_flow.is_none() {
            self.cached(aggregate_id)
        } else {
            None
        };
        loop {
            attempt += 1;
            let remembered = from_memory.take();
            let was_remembered = remembered.is_some();
            let loaded = match remembered {
                Some(loaded) => loaded,
                None if fresh_id && attempt == 1 => Loaded::new(),
                None => self.load(aggregate_id).await?,
            };
            if let (Some(flow), Some(step)) = (resumed_flow, &step) {
                let pool = self.log.pool();
                let done = feed::written_by_flow(pool, A::TYPE, aggregate_id, &flow.id, step)
                    .await
                    .map_err(|e| AggregateError::DatabaseConnectionError(Box::new(e)))?;
                if done {
                    return Ok(loaded.aggregate);
                }
            }
            let snapshot_sequence = loaded.snapshot_sequence;
            let mut context = EventStoreAggregateContext {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: loaded.aggregate,
                current_sequence: loaded.sequence,
                current_snapshot: None,
            };
            let sink = EventSink::default();
            let handled = context
                .aggregate()
                .handle(command.clone(), &self.services, &sink)
                .await;
            let after = context.aggregate().clone();
            let events = sink.collect().await;
            // A refusal or a no-op decided on remembered state may be another process's
            // doing since: decided again on a fresh load (this attempt is not counted).
            if was_remembered && (handled.is_err() || events.is_empty()) {
                self.remember(aggregate_id, None);
                attempt -= 1;
                continue;
            }
            handled.map_err(AggregateError::UserError)?;
            if events.is_empty() {
                return Ok(after);
            }
            let sequence = context.current_sequence + events.len();
            match self.store.commit(events, context, recorded.clone()).await {
                Ok(_) => {
                    if let Some(flow) = &metadata.flow {
                        flow.committed();
                    }
                    let kept = Loaded {
                        aggregate: after.clone(),
                        sequence,
                        snapshot_sequence,
                    };
                    self.keep_committed(aggregate_id, kept).await;
                    return Ok(after);
                }
                Err(_) if was_remembered => {
                    // Another process appended since (a conflict on the sequence, or a claim
                    // or key its events broke first): decided again on a fresh load, at once.
                    self.remember(aggregate_id, None);
                    attempt -= 1;
                }
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    // Another process appended first. Back off, growing and jittered, so
                    // racing writers spread apart.
                    let ceiling = 5u64 << attempt.min(6);
                    let pause = rand::random::<u64>() % ceiling;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A command's kind, the name of its variant (`RecordPayment`), read from the start of its
/// `Debug` form: every command enum derives it, and the name is all a flow's step needs. The
/// writing stops at the name, so a large command is not formatted whole.
fn command_kind(command: &impl std::fmt::Debug) -> String {
    struct Name(String);
    impl std::fmt::Write for Name {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if !(c.is_alphanumeric() || c == '_') {
                    return Err(std::fmt::Error);
                }
                self.0.push(c);
            }
            Ok(())
        }
    }
    let mut name = Name(String::new());
    // The error is the stop at the name's end.
    let _ = std::fmt::write(&mut name, format_args!("{command:?}"));
    name.0
}
