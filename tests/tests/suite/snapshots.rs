//! Long histories load from a snapshot and the events after it; the state must be exactly
//! the state a full replay gives.

use app::command_runner::{SNAPSHOT_EVERY, SNAPSHOT_SCHEMA};
use app::App as AppState;
use billstream_tests::TestApp;
use serde_json::json;

/// A customer with `updates` name changes after its creation; answers its id.
async fn customer_with_updates(app: &TestApp, updates: usize) -> String {
    let customer = app
        .create_customer(json!({"email": "long@example.com", "name": "v0"}))
        .await;
    let id = customer["id"].as_str().unwrap().to_owned();
    for i in 1..=updates {
        let body = json!({"name": format!("v{i}"), "billingCity": format!("city {}", i % 7)});
        let (status, answer) = app.post(&format!("/v1/customers/{id}"), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    id
}

async fn snapshot_sequence(app: &TestApp, id: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT sequence FROM aggregate_snapshots WHERE aggregate_id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn state_from_a_snapshot_equals_state_from_a_full_replay() {
    let app = TestApp::spawn().await;
    let updates = 2 * SNAPSHOT_EVERY + SNAPSHOT_EVERY / 2;
    let id = customer_with_updates(&app, updates).await;

    // One create and `updates` updates: the last snapshot was taken at 2 * SNAPSHOT_EVERY.
    assert_eq!(
        snapshot_sequence(&app, &id).await,
        Some(2 * SNAPSHOT_EVERY as i64)
    );
    let state = AppState::new(app.pool.clone());
    let from_snapshot = state.customers.current(&id).await.unwrap();
    let replayed = state.customers.replayed(&id).await.unwrap();
    assert_eq!(from_snapshot, replayed);
    assert_eq!(
        from_snapshot.details.name.as_deref(),
        Some(format!("v{updates}").as_str())
    );

    // The API agrees: the current customer is the one folded at its last version.
    let (_, current) = app.get(&format!("/v1/customers/{id}")).await;
    let (_, folded) = app
        .get(&format!("/v1/customers/{id}?version={}", updates + 1))
        .await;
    assert_eq!(current, folded);
}

#[tokio::test]
async fn a_snapshot_that_no_longer_decodes_is_replaced_by_a_replay() {
    let app = TestApp::spawn().await;
    let id = customer_with_updates(&app, SNAPSHOT_EVERY + 5).await;
    sqlx::query(
        "UPDATE aggregate_snapshots SET state = '{\"unknown\": true}' WHERE aggregate_id = $1",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();

    let state = AppState::new(app.pool.clone());
    let current = state.customers.current(&id).await.unwrap();
    assert_eq!(current, state.customers.replayed(&id).await.unwrap());

    // And commands still work on it.
    let (status, body) = app
        .post(&format!("/v1/customers/{id}"), json!({"name": "after"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["name"], "after");
}

#[tokio::test]
async fn a_snapshot_of_another_schema_is_ignored() {
    let app = TestApp::spawn().await;
    let id = customer_with_updates(&app, SNAPSHOT_EVERY + 5).await;
    // A decodable state written by other code: it must not be trusted.
    sqlx::query(
        "UPDATE aggregate_snapshots \
         SET schema = $2, state = jsonb_set(state::jsonb, '{details,name}', '\"STALE\"')::json \
         WHERE aggregate_id = $1",
    )
    .bind(&id)
    .bind(SNAPSHOT_SCHEMA - 1)
    .execute(&app.pool)
    .await
    .unwrap();

    let state = AppState::new(app.pool.clone());
    let current = state.customers.current(&id).await.unwrap();
    assert_eq!(
        current.details.name.as_deref(),
        Some(format!("v{}", SNAPSHOT_EVERY + 5).as_str())
    );
    assert_eq!(current, state.customers.replayed(&id).await.unwrap());
}

#[tokio::test]
async fn short_histories_take_no_snapshot() {
    let app = TestApp::spawn().await;
    let id = customer_with_updates(&app, SNAPSHOT_EVERY - 2).await;
    assert_eq!(snapshot_sequence(&app, &id).await, None);
}
