//! The catch-up cursor is exact: events are applied once each, in commit order, also where the
//! pending transaction ids cross a power of ten (where ordering them as text would put
//! 1000000 before 999998) and more are pending than one batch takes.

use std::sync::Mutex;

use async_trait::async_trait;
use projections::catch_up::{self, CatchUpError, LogConsumer, ScanWindow, BATCH, SCAN};
use projections::event_store::feed::StoredEvent;
use projections::testing::sqlx::{self, Connection, PgConnection};
use projections::testing::TestDatabase;

/// Remembers every event it is given, in the order given, of the aggregate types it reads.
struct Recorder {
    applied: Mutex<Vec<i64>>,
    reads: Option<&'static [&'static str]>,
}

impl Recorder {
    fn reading(reads: Option<&'static [&'static str]>) -> Self {
        Self {
            applied: Mutex::new(Vec::new()),
            reads,
        }
    }
}

#[async_trait]
impl LogConsumer for Recorder {
    fn name(&self) -> &'static str {
        "test_recorder"
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        self.reads
    }

    async fn apply(
        &self,
        events: &[StoredEvent],
        _tx: &mut PgConnection,
    ) -> Result<(), CatchUpError> {
        // A type it does not read must not reach it, and what reaches it comes whole.
        for event in events {
            assert!(self
                .reads
                .is_none_or(|types| types.contains(&event.aggregate_type.as_str())));
            assert_eq!(event.payload, serde_json::json!({"n": event.sequence}));
        }
        self.applied
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| e.position));
        Ok(())
    }
}

/// The server's oldest running transaction id, after making sure it is past 1,000 so that a
/// power of ten lies below it (a fresh server may not have used that many yet).
async fn settled_horizon(connection: &mut PgConnection) -> u64 {
    loop {
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&mut *connection)
                .await
                .unwrap();
        let xmin: u64 = xmin.parse().unwrap();
        if xmin > 1_010 {
            return xmin;
        }
        // Each statement outside a transaction block that takes an id uses one up.
        for _ in 0..100 {
            sqlx::query("SELECT pg_current_xact_id()")
                .execute(&mut *connection)
                .await
                .unwrap();
        }
    }
}

/// Waits until every event's transaction is older than every transaction still running on the
/// server, so that a step sees them all: the other tests of this file run beside this one,
/// and a step's own transaction, while open, holds back what committed after it began.
async fn wait_until_settled(connection: &mut PgConnection) {
    loop {
        let settled: bool = sqlx::query_scalar(
            "SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) \
             FROM events",
        )
        .fetch_one(&mut *connection)
        .await
        .unwrap();
        if settled {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pending_transactions_across_a_power_of_ten_apply_once_each_in_commit_order() {
    let database = TestDatabase::create().await;
    let mut connection = PgConnection::connect(&database.url).await.unwrap();
    let horizon = settled_horizon(&mut connection).await;
    // The largest power of ten with a few settled ids on each side of it.
    let mut boundary = 1_000u64;
    while boundary * 10 + 3 < horizon {
        boundary *= 10;
    }
    let transactions: Vec<u64> = (boundary - 3..=boundary + 2).collect();
    // More events than one batch, written so that positions do not follow transaction ids:
    // the later transactions take the lower positions.
    let per_transaction = (BATCH as usize) / 4;
    for transaction in transactions.iter().rev() {
        for n in 0..per_transaction {
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata, tenant, transaction_id) \
                 VALUES ('Probe', $1, $2, 'Probed', '1', json_build_object('n', $2), '{}', \
                 'merchant_x:test', $3::xid8)",
            )
            .bind(format!("probe_{transaction}"))
            .bind(n as i64 + 1)
            .bind(transaction.to_string())
            .execute(&mut connection)
            .await
            .unwrap();
        }
    }
    let expected: Vec<i64> =
        sqlx::query_scalar("SELECT position FROM events ORDER BY transaction_id, position")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert!(
        expected.len() > BATCH as usize,
        "more pending than one batch"
    );

    let recorder = Recorder::reading(None);
    let mut steps = 0;
    let mut window = ScanWindow::default();
    while catch_up::step(&mut connection, &recorder, &mut window)
        .await
        .unwrap()
        > 0
    {
        steps += 1;
        assert!(steps < 100, "the cursor must come to an end");
    }
    assert!(steps > 1, "the events took more than one batch");
    let applied = recorder.applied.into_inner().unwrap();
    assert_eq!(
        applied.len(),
        expected.len(),
        "every event applied exactly once"
    );
    assert_eq!(applied, expected, "applied in commit order");
}

#[tokio::test]
async fn a_consumer_passes_over_the_events_of_types_it_does_not_read_and_moves_past_them() {
    let database = TestDatabase::create().await;
    let mut connection = PgConnection::connect(&database.url).await.unwrap();
    // Wanted and unwanted events interleaved, more than one batch of them.
    for n in 0..(BATCH + 10) {
        let aggregate_type = if n % 3 == 0 { "Wanted" } else { "Other" };
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata, tenant) \
             VALUES ($1, $2, 1, 'Happened', '1', json_build_object('n', 1), '{}', 'merchant_x:test')",
        )
        .bind(aggregate_type)
        .bind(format!("agg_{n}"))
        .execute(&mut connection)
        .await
        .unwrap();
    }
    let wanted: Vec<i64> = sqlx::query_scalar(
        "SELECT position FROM events WHERE aggregate_type = 'Wanted' \
         ORDER BY transaction_id, position",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    let last: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&mut connection)
        .await
        .unwrap();

    wait_until_settled(&mut connection).await;
    let recorder = Recorder::reading(Some(&["Wanted"]));
    let mut passed = 0;
    let mut window = ScanWindow::default();
    loop {
        let step = catch_up::step(&mut connection, &recorder, &mut window)
            .await
            .unwrap();
        if step == 0 {
            break;
        }
        passed += step;
    }
    assert_eq!(
        passed,
        BATCH as usize + 10,
        "every event passed, wanted or not"
    );
    assert_eq!(recorder.applied.into_inner().unwrap(), wanted);
    let at = catch_up::checkpoint(&mut connection, "test_recorder")
        .await
        .unwrap();
    assert_eq!(
        at.position, last,
        "the checkpoint moved past the unwanted events too"
    );
}

#[tokio::test]
async fn a_run_of_unwanted_events_is_passed_over_in_widening_windows_and_a_batch_stays_a_batch() {
    let database = TestDatabase::create().await;
    let mut connection = PgConnection::connect(&database.url).await.unwrap();
    // Many batches' worth of unwanted events, then two batches' worth of wanted ones.
    let unwanted = 2 * SCAN;
    let wanted = 2 * BATCH;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata, tenant) \
         SELECT CASE WHEN n <= $1 THEN 'Other' ELSE 'Wanted' END, 'agg_' || n, n, 'Happened', \
                '1', json_build_object('n', n), '{}', 'merchant_x:test' \
         FROM generate_series(1, $1 + $2) AS n",
    )
    .bind(unwanted)
    .bind(wanted)
    .execute(&mut connection)
    .await
    .unwrap();
    wait_until_settled(&mut connection).await;

    let recorder = Recorder::reading(Some(&["Wanted"]));
    let mut window = ScanWindow::default();
    let mut steps = Vec::new();
    loop {
        let before = recorder.applied.lock().unwrap().len();
        let passed = catch_up::step(&mut connection, &recorder, &mut window)
            .await
            .unwrap();
        if passed == 0 {
            break;
        }
        let applied = recorder.applied.lock().unwrap().len() - before;
        assert!(
            applied <= BATCH as usize,
            "a batch stays a batch: {applied}"
        );
        steps.push(passed);
    }
    assert_eq!(
        steps.iter().sum::<usize>(),
        (unwanted + wanted) as usize,
        "every event passed once"
    );
    assert_eq!(recorder.applied.lock().unwrap().len(), wanted as usize);
    // A batch at a time this would be (2 * SCAN + 2 * BATCH) / BATCH = 42 steps; the window
    // widens 500, 2,000, 8,000, 10,000, ...
    assert!(
        steps.len() <= 8,
        "the unwanted run passed in widening windows: {steps:?}"
    );
    assert!(steps.iter().any(|&passed| passed as i64 == SCAN));
    // After the wanted batches filled early, the window narrowed again.
    assert!(window.events() <= 2 * BATCH + 1, "{window:?}");
}
