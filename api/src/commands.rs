//! Runs commands against aggregates through cqrs-es's event store, and hands back the
//! aggregate as the command left it, so a handler can answer without reading again.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{EventStoreAggregateContext, PersistedEventStore};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use projections::event_log::TENANT_METADATA;
use projections::EventLog;

use crate::aggregate_locks::AggregateLocks;
use crate::auth::Principal;
use crate::error::ApiError;

/// How often a command that lost a race for its aggregate (to another process: within this
/// one, commands on an aggregate take turns) is tried again before the caller gets a 409.
/// Each try reloads the aggregate, so the rules see the winner's events.
const MAX_ATTEMPTS: u32 = 10;

pub struct CommandBus<A: Aggregate> {
    store: PersistedEventStore<EventLog, A>,
    services: A::Services,
    locks: AggregateLocks,
}

impl<A> CommandBus<A>
where
    A: Aggregate + Clone,
    A::Command: Clone,
{
    pub fn new(log: EventLog, services: A::Services) -> Self {
        Self {
            store: PersistedEventStore::new_event_store(log),
            services,
            locks: AggregateLocks::default(),
        }
    }

    /// Loads the aggregate, lets it handle the command and appends what it emitted, retrying
    /// on a concurrent append. Returns the aggregate after the command.
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

    /// The aggregate's events as cqrs-es reads them (upcast to their current versions).
    pub async fn history(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.store.load_events(aggregate_id).await
    }

    async fn run(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        fresh_id: bool,
    ) -> Result<A, AggregateError<A::Error>> {
        // A fresh id has no other writer to wait for.
        let _turn = if fresh_id {
            None
        } else {
            Some(self.locks.lock(aggregate_id).await)
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut context = if fresh_id && attempt == 1 {
                EventStoreAggregateContext {
                    aggregate_id: aggregate_id.to_owned(),
                    aggregate: A::default(),
                    current_sequence: 0,
                    current_snapshot: None,
                }
            } else {
                self.store.load_aggregate(aggregate_id).await?
            };
            let sink = EventSink::default();
            context
                .aggregate()
                .handle(command.clone(), &self.services, &sink)
                .await
                .map_err(AggregateError::UserError)?;
            let after = context.aggregate().clone();
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(after);
            }
            match self.store.commit(events, context, metadata.to_map()).await {
                Ok(_) => return Ok(after),
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

/// Who asked for a command and in which request; stored with every event it produces.
#[derive(Debug, Clone)]
pub struct CommandMetadata {
    pub principal: Principal,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl CommandMetadata {
    fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (TENANT_METADATA.to_owned(), self.principal.tenant.key()),
            ("actor".to_owned(), self.principal.key_id.clone()),
        ]);
        if let Some(id) = &self.request_id {
            map.insert("requestId".to_owned(), id.clone());
        }
        if let Some(key) = &self.idempotency_key {
            map.insert("idempotencyKey".to_owned(), key.clone());
        }
        map
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CommandMetadata {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Self {
            principal,
            request_id: header("x-request-id"),
            idempotency_key: header("idempotency-key"),
        })
    }
}
