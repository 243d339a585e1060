//! Appends of combined aggregate types that wait for a busy lane share one statement, and a
//! refused combined statement leaves each append to its own fate.

use std::time::Duration;

use cqrs_es::persist::{PersistedEventRepository, PersistenceError, SerializedEvent};
use domain::credit::CreditLedger;
use projections::database::connect_and_migrate;
use projections::testing::sqlx;
use projections::testing::TestDatabase;
use projections::EventLog;
use serde_json::json;

const COMBINED: &[&str] = &["Counter"];

fn event(aggregate_id: &str, sequence: usize) -> SerializedEvent {
    SerializedEvent {
        aggregate_type: "Counter".into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        event_type: "Counted".into(),
        event_version: "1.0".into(),
        payload: json!({"Counted": {}}),
        metadata: json!({"tenant": "merchant_test:test"}),
    }
}

/// Appends event `sequence` of `aggregate_id` in a task of its own. (The aggregate type
/// parameter only satisfies cqrs-es: the log reads the type from the events.)
fn append(
    log: &EventLog,
    aggregate_id: &str,
    sequence: usize,
) -> tokio::task::JoinHandle<Result<(), PersistenceError>> {
    let log = log.clone();
    let events = vec![event(aggregate_id, sequence)];
    tokio::spawn(async move { log.persist::<CreditLedger>(&events, None).await })
}

/// A log with one lane, that lane taken by an append blocked behind a table lock, and the
/// transaction holding that lock: what is appended next waits for the lane.
async fn busy_lane(
    pool: &sqlx::PgPool,
) -> (
    EventLog,
    sqlx::Transaction<'static, sqlx::Postgres>,
    tokio::task::JoinHandle<Result<(), PersistenceError>>,
) {
    let log = EventLog::new(pool.clone(), vec![]).combining_appends_of(COMBINED, 1);
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let first = append(&log, "first", 1);
    wait_for(|| async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
             AND query LIKE '%INSERT INTO events%'",
        )
        .fetch_one(pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    (log, blocker, first)
}

async fn wait_for<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition never held");
}

/// The transaction each aggregate's events were appended in.
async fn transactions(pool: &sqlx::PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT aggregate_id, transaction_id::text FROM events ORDER BY aggregate_id, sequence",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn appends_waiting_for_a_busy_lane_commit_in_one_statement() {
    let database = TestDatabase::create().await;
    let pool = connect_and_migrate(&database.url, 8).await.unwrap();
    let (log, blocker, first) = busy_lane(&pool).await;
    let waiting: Vec<_> = ["b", "c", "d"]
        .iter()
        .map(|id| append(&log, id, 1))
        .collect();
    wait_for(|| async { log.appends_waiting() == 3 }).await;
    blocker.commit().await.unwrap();
    first.await.unwrap().unwrap();
    for appended in waiting {
        appended.await.unwrap().unwrap();
    }
    let rows = transactions(&pool).await;
    let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["b", "c", "d", "first"]);
    let of = |id: &str| rows.iter().find(|(row, _)| row == id).unwrap().1.clone();
    assert_eq!(of("b"), of("c"), "b and c waited together");
    assert_eq!(of("c"), of("d"), "c and d waited together");
    assert_ne!(
        of("first"),
        of("b"),
        "the first append had a statement of its own"
    );
}

#[tokio::test]
async fn a_refused_combined_statement_leaves_each_append_to_its_own_answer() {
    let database = TestDatabase::create().await;
    let pool = connect_and_migrate(&database.url, 8).await.unwrap();
    let log = EventLog::new(pool.clone(), vec![]);
    log.persist::<CreditLedger>(&[event("c", 1)], None)
        .await
        .unwrap();
    let (log, blocker, first) = busy_lane(&pool).await;
    let waiting: Vec<_> = [("b", 1), ("c", 1), ("d", 1)]
        .iter()
        .map(|(id, sequence)| append(&log, id, *sequence))
        .collect();
    wait_for(|| async { log.appends_waiting() == 3 }).await;
    blocker.commit().await.unwrap();
    first.await.unwrap().unwrap();
    let mut answers = Vec::new();
    for appended in waiting {
        answers.push(appended.await.unwrap());
    }
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(
        matches!(answers[1], Err(PersistenceError::OptimisticLockError)),
        "c's sequence 1 was taken: {:?}",
        answers[1]
    );
    assert!(answers[2].is_ok(), "{:?}", answers[2]);
    let ids: Vec<String> = transactions(&pool)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["b", "c", "d", "first"], "c still has its one event");
}

#[tokio::test]
async fn appends_of_other_types_never_wait_to_be_combined() {
    let database = TestDatabase::create().await;
    let pool = connect_and_migrate(&database.url, 8).await.unwrap();
    let (log, blocker, first) = busy_lane(&pool).await;
    let other = {
        let log = log.clone();
        let mut event = event("other", 1);
        event.aggregate_type = "Other".into();
        tokio::spawn(async move { log.persist::<CreditLedger>(&[event], None).await })
    };
    // It goes straight to the database, where it waits behind the lock like the first.
    wait_for(|| async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
             AND query LIKE '%INSERT INTO events%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
            == 2
    })
    .await;
    assert_eq!(log.appends_waiting(), 0);
    blocker.commit().await.unwrap();
    first.await.unwrap().unwrap();
    other.await.unwrap().unwrap();
}
