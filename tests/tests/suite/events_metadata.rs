//! Every change is an event in the log, carrying who acted, in which request, for which
//! tenant and when.

use billstream_tests::{send_raw, TestApp};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};

/// One row of the events table, as the tests look at it.
#[derive(Debug, sqlx::FromRow)]
struct EventRow {
    sequence: i64,
    event_type: String,
    event_version: String,
    position: Option<i64>,
    recorded_at: DateTime<Utc>,
    tenant: Option<String>,
    metadata: Value,
}

async fn events_of(app: &TestApp, aggregate_id: &str) -> Vec<EventRow> {
    sqlx::query_as(
        "SELECT sequence, event_type, event_version, position, recorded_at, tenant, \
         metadata::jsonb AS metadata FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(aggregate_id)
    .fetch_all(&app.pool)
    .await
    .expect("events")
}

async fn key_id(app: &TestApp, mode: &str) -> String {
    sqlx::query_scalar("SELECT id FROM api_keys WHERE merchant_id = $1 AND mode = $2")
        .bind(&app.merchant.merchant_id)
        .bind(mode)
        .fetch_one(&app.pool)
        .await
        .expect("key id")
}

#[tokio::test]
async fn a_create_records_customer_created_with_its_metadata() {
    let app = TestApp::spawn().await;
    let before = Utc::now();
    let response = send_raw(
        app.request(Method::POST, "/v1/customers")
            .header("Idempotency-Key", "idem-create-1")
            .header("x-request-id", "req-create-1")
            .json(&json!({"email": "logged@example.com", "name": "Logged"})),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.text);
    let id = response.json()["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let events = events_of(&app, &id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event_type, "CustomerCreated");
    assert_eq!(event.event_version, "1");
    assert!(event.position.is_some_and(|p| p > 0), "{event:?}");
    let recorded = event.recorded_at;
    assert!(
        recorded >= before - chrono::Duration::seconds(5)
            && recorded <= Utc::now() + chrono::Duration::seconds(5),
        "recorded_at {recorded} is not now"
    );
    assert_eq!(
        event.tenant.as_deref(),
        Some(format!("{}:test", app.merchant.merchant_id).as_str())
    );
    assert!(event
        .tenant
        .as_deref()
        .is_some_and(|t| t.starts_with("merchant_") && t.ends_with(":test")));

    let metadata = &event.metadata;
    let actor = metadata["actor"].as_str().expect("actor");
    assert!(actor.starts_with("key_"), "{metadata}");
    assert_eq!(actor, key_id(&app, "test").await);
    assert_eq!(metadata["requestId"], "req-create-1");
    // A keyed request's events carry its flow's id, derived from the key, never the key: the
    // key unseals its stored response.
    assert!(metadata["flowId"]
        .as_str()
        .is_some_and(|id| id.starts_with("req_") && !id.contains("idem-create-1")));
    assert!(
        !metadata.to_string().contains("idem-create-1"),
        "{metadata}"
    );
}

#[tokio::test]
async fn updates_and_deletes_are_events_in_order_with_their_own_request_ids() {
    let app = TestApp::spawn().await;
    let customer = app.create_customer(json!({"email": "a@example.com"})).await;
    let id = customer["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/customers/{id}");
    let live_id = key_id(&app, "live").await;

    let response = send_raw(
        app.request(Method::POST, &path)
            .header("x-request-id", "req-update")
            .json(&json!({"email": "b@example.com", "name": "B"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text);
    // An update that changes nothing records nothing.
    let (status, _) = app.post(&path, json!({"name": "B"})).await;
    assert_eq!(status, 200);
    let response = send_raw(
        app.request(Method::DELETE, &path)
            .header("x-request-id", "req-delete"),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text);

    let events = events_of(&app, &id).await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        vec![
            "CustomerCreated",
            "EmailChanged",
            "CustomerDetailsUpdated",
            "SoftDeleted"
        ]
    );
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e.position.expect("position"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "{sequences:?}"
    );
    assert_eq!(events[1].metadata["requestId"], "req-update");
    assert_eq!(events[2].metadata["requestId"], "req-update");
    assert_eq!(events[3].metadata["requestId"], "req-delete");
    for event in &events {
        let version = if event.event_type == "SoftDeleted" {
            "2"
        } else {
            "1"
        };
        assert_eq!(event.event_version, version);
        assert_eq!(event.tenant, events[0].tenant);
        assert_eq!(event.metadata["actor"], events[0].metadata["actor"]);
        assert_ne!(event.metadata["actor"], live_id.as_str());
        assert!(event.metadata.get("flowId").is_none_or(Value::is_null));
    }
}

#[tokio::test]
async fn a_live_key_writes_events_of_the_live_tenant_with_the_live_key_as_actor() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "live@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let events = events_of(&app, body["customer"]["id"].as_str().unwrap()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].tenant.as_deref(),
        Some(format!("{}:live", app.merchant.merchant_id).as_str())
    );
    assert_eq!(
        events[0].metadata["actor"],
        key_id(&app, "live").await.as_str()
    );
    // A request id is assigned when the caller sends none.
    assert!(events[0].metadata["requestId"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
}

#[tokio::test]
async fn refused_commands_record_no_event() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "taken@example.com"}))
        .await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
            .fetch_one(&app.pool)
            .await
            .expect("count")
    };
    let before = count().await;
    for body in [
        json!({"email": "taken@example.com"}),
        json!({"email": ""}),
        json!({"email": "x@example.com", "billingCountry": "Nowhere"}),
    ] {
        let (status, _) = app.post("/v1/customers", body).await;
        assert!(matches!(status, 400 | 409));
    }
    let (status, _) = app
        .delete("/v1/customers/cust_0000000000000000000000000000dead")
        .await;
    assert_eq!(status, 404);
    assert_eq!(count().await, before);
}

#[tokio::test]
async fn a_request_id_over_200_characters_is_replaced_not_echoed_or_stored() {
    let app = TestApp::spawn().await;
    let long = "r".repeat(60 * 1024);
    for sent in [long.as_str(), &"x".repeat(201)] {
        let response = send_raw(
            app.request(Method::POST, "/v1/customers")
                .header("x-request-id", sent)
                .json(&json!({"email": format!("long{}@example.com", sent.len())})),
        )
        .await;
        assert_eq!(response.status, 201, "{}", response.text);
        let echoed = response
            .header("x-request-id")
            .unwrap_or_default()
            .to_owned();
        assert!(
            !echoed.is_empty() && echoed.len() <= 200 && echoed != sent,
            "echoed a request id of {} characters",
            echoed.len()
        );
        let id = response.json()["customer"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let stored = events_of(&app, &id).await[0].metadata["requestId"].clone();
        assert_eq!(stored, echoed.as_str(), "the replacement is what is stored");
    }
    // One of 200 is the caller's to keep.
    let kept = "k".repeat(200);
    let response = send_raw(
        app.request(Method::POST, "/v1/customers")
            .header("x-request-id", &kept)
            .json(&json!({"email": "kept@example.com"})),
    )
    .await;
    assert_eq!(response.header("x-request-id"), Some(kept.as_str()));
}
