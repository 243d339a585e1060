//! Snapshots with an aggregate whose events do not commute with themselves: a counter. If a
//! load applied an event twice (as cqrs-es 0.5.0's snapshot store does), the sum would show
//! it.

use std::sync::Arc;

use app::command_runner::{CommandRunner, SNAPSHOT_EVERY};
use app::{CommandMetadata, Principal};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::tenant::{Mode, Tenant};
use projections::EventLog;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use projections::testing::TestDatabase;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Counter {
    total: i64,
    deposits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum CounterEvent {
    Deposited { amount: i64 },
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        "Deposited".into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("never")]
struct Never;

impl Aggregate for Counter {
    const TYPE: &'static str = "TestCounter";
    type Command = i64;
    type Event = CounterEvent;
    type Error = Never;
    type Services = Arc<()>;

    async fn handle(
        &mut self,
        amount: i64,
        _: &Arc<()>,
        sink: &EventSink<Self>,
    ) -> Result<(), Never> {
        sink.write(CounterEvent::Deposited { amount }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CounterEvent) {
        let CounterEvent::Deposited { amount } = event;
        self.total += amount;
        self.deposits += 1;
    }
}

fn metadata() -> CommandMetadata {
    CommandMetadata {
        principal: Principal {
            session: None,
            tenant: Tenant::new("merchant_test", Mode::Test),
            key_id: "key_test".into(),
        },
        request_id: None,
        flow: None,
    }
}

/// A fresh database, its pool and a runner of counters over it.
async fn counter_runner() -> (TestDatabase, PgPool, CommandRunner<Counter>) {
    let database = TestDatabase::create().await;
    let pool = projections::database::connect_and_migrate(&database.url, 4)
        .await
        .expect("database");
    let bus = CommandRunner::new(EventLog::new(pool.clone(), vec![]), Arc::new(()));
    (database, pool, bus)
}

#[tokio::test]
async fn deposits_load_back_exactly_once_through_snapshots() {
    let (_database, pool, bus) = counter_runner().await;
    let deposits = 2 * SNAPSHOT_EVERY + 17;
    for _ in 0..deposits {
        let after = bus.execute("counter_1", 10, &metadata()).await.unwrap();
        assert_eq!(after.total % 10, 0);
    }
    let snapshots: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM aggregate_snapshots WHERE aggregate_id = 'counter_1'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(snapshots, 1, "a snapshot was taken");

    let expected = Counter {
        total: 10 * deposits as i64,
        deposits: deposits as u32,
    };
    assert_eq!(bus.current("counter_1").await.unwrap(), expected);
    assert_eq!(bus.replayed("counter_1").await.unwrap(), expected);
    // A command on top of the snapshot sees the same total.
    let after = bus.execute("counter_1", 5, &metadata()).await.unwrap();
    assert_eq!(after.total, expected.total + 5);
    pool.close().await;
}

#[tokio::test]
async fn a_snapshot_that_no_longer_decodes_or_is_of_another_schema_is_replayed_past() {
    let (_database, pool, bus) = counter_runner().await;
    let deposits = SNAPSHOT_EVERY + 3;
    for _ in 0..deposits {
        bus.execute("counter_2", 10, &metadata()).await.unwrap();
    }
    let expected = Counter {
        total: 10 * deposits as i64,
        deposits: deposits as u32,
    };
    // A state that is no Counter: the load replays every event instead.
    sqlx::query("UPDATE aggregate_snapshots SET state = '[\"not a counter\"]' WHERE aggregate_id = 'counter_2'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(bus.current("counter_2").await.unwrap(), expected);
    // A snapshot of another schema is not read at all, however it decodes.
    sqlx::query(
        "UPDATE aggregate_snapshots SET schema = schema + 1, \
         state = '{\"total\": 1, \"deposits\": 1}' WHERE aggregate_id = 'counter_2'",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(bus.current("counter_2").await.unwrap(), expected);
    let after = bus.execute("counter_2", 5, &metadata()).await.unwrap();
    assert_eq!(after.total, expected.total + 5);
    pool.close().await;
}
