//! `GET /v1/customers/{id}/events`: a customer's events in order, as the log holds them, with
//! who acted and in which request; for deleted customers too, and for no other tenant.

use billstream_tests::{assert_error, send, send_raw, timestamp, TestApp};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};

const NOT_FOUND: &str = "Customer not found or access denied";
const INVALID_ID: &str =
    "Invalid customer ID: expected \"cust_\" followed by letters, digits or underscores";
const EMAIL_TAKEN_BY_ANOTHER: &str = "Another customer with this email already exists. Use dangerouslyAllowSameEmailForDifferentCustomers to allow.";
const EMAIL_TAKEN: &str = "A customer with this email already exists";

/// The fields of every event, and no others.
const EVENT_FIELDS: [&str; 9] = [
    "aggregateId",
    "aggregateType",
    "data",
    "metadata",
    "position",
    "recordedAt",
    "sequence",
    "type",
    "version",
];

fn events_path(id: &str) -> String {
    format!("/v1/customers/{id}/events")
}

/// The customer's events; panics unless the answer is a 200 `{"events": [...]}` and nothing else.
async fn events_of(app: &TestApp, id: &str) -> Vec<Value> {
    events_of_as(app, app.test_key(), id).await
}

async fn events_of_as(app: &TestApp, key: &str, id: &str) -> Vec<Value> {
    let (status, body) = app.get_as(key, &events_path(id)).await;
    assert_eq!(status, 200, "events of {id}: {body}");
    let object = body
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"));
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["events"],
        "envelope: {body}"
    );
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events array: {body}"))
        .clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

/// The id of the merchant's key of `mode`, as `metadata.actor` names it.
async fn key_id(app: &TestApp, mode: &str) -> String {
    sqlx::query_scalar("SELECT id FROM api_keys WHERE merchant_id = $1 AND mode = $2")
        .bind(&app.merchant.merchant_id)
        .bind(mode)
        .fetch_one(&app.pool)
        .await
        .expect("key id")
}

/// Asserts what every event of one customer shares: its shape, aggregate, version, sequences
/// 1..n and growing positions.
#[track_caller]
fn assert_well_formed(events: &[Value], id: &str) {
    for (index, event) in events.iter().enumerate() {
        let mut fields: Vec<&str> = event
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {event}"))
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, EVENT_FIELDS, "{event}");
        assert_eq!(event["aggregateType"], "Customer", "{event}");
        assert_eq!(event["aggregateId"], id, "{event}");
        assert_eq!(event["sequence"], json!(index + 1), "{event}");
        // SoftDeleted is at version 2 (it records what a cascading delete canceled).
        let version = if event["type"] == "SoftDeleted" {
            "2"
        } else {
            "1"
        };
        assert_eq!(event["version"], version, "{event}");
        assert!(event["position"].as_i64().is_some_and(|p| p > 0), "{event}");
        assert!(event["data"].is_object(), "{event}");
        assert!(event["metadata"].is_object(), "{event}");
        timestamp(&event["recordedAt"]);
    }
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions do not grow: {positions:?}"
    );
    let recorded: Vec<DateTime<Utc>> = events.iter().map(|e| timestamp(&e["recordedAt"])).collect();
    assert!(
        recorded.windows(2).all(|w| w[0] <= w[1]),
        "recordedAt goes back: {recorded:?}"
    );
}

#[tokio::test]
async fn a_customers_events_tell_its_story_in_order_with_who_asked_and_in_which_request() {
    let app = TestApp::spawn().await;
    let test_key_id = key_id(&app, "test").await;
    let tenant = format!("{}:test", app.merchant.merchant_id);

    let created = send_raw(
        app.request(Method::POST, "/v1/customers")
            .header("Idempotency-Key", "idem-story-create")
            .header("x-request-id", "req-story-create")
            .json(&json!({"email": "story@example.com", "name": "Story", "billingCity": "Lyon"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let customer = created.json()["customer"].clone();
    let id = customer["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/customers/{id}");

    let renamed = send_raw(
        app.request(Method::POST, &path)
            .header("x-request-id", "req-story-rename")
            .json(&json!({"name": "Story Teller"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.json()["customer"]["name"], "Story Teller");

    let email_changed = send_raw(
        app.request(Method::POST, &path)
            .header("x-request-id", "req-story-email")
            .header("Idempotency-Key", "idem-story-email")
            .json(&json!({"email": "teller@example.com"})),
    )
    .await;
    assert_eq!(email_changed.status, 200, "{}", email_changed.text);
    assert_eq!(
        email_changed.json()["customer"]["email"],
        "teller@example.com"
    );

    let deleted = send_raw(
        app.request(Method::DELETE, &path)
            .header("x-request-id", "req-story-delete"),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.json(), json!({"success": true}));

    let events = events_of(&app, &id).await;
    assert_eq!(
        types(&events),
        vec![
            "CustomerCreated",
            "CustomerDetailsUpdated",
            "EmailChanged",
            "SoftDeleted"
        ],
        "{events:?}"
    );
    assert_well_formed(&events, &id);

    // What each event says.
    let data = &events[0]["data"];
    assert_eq!(data["id"], id.as_str(), "{data}");
    assert_eq!(data["email"], "story@example.com", "{data}");
    assert_eq!(data["details"]["name"], "Story", "{data}");
    assert_eq!(data["details"]["billingCity"], "Lyon", "{data}");
    assert_eq!(timestamp(&data["at"]), timestamp(&customer["createdAt"]));
    let data = &events[1]["data"];
    assert_eq!(data["changes"], json!({"name": "Story Teller"}), "{data}");
    assert_eq!(
        timestamp(&data["at"]),
        timestamp(&renamed.json()["customer"]["updatedAt"])
    );
    let data = &events[2]["data"];
    assert_eq!(data["email"], "teller@example.com", "{data}");
    assert_eq!(data["shared"], false, "{data}");
    assert_eq!(
        timestamp(&data["at"]),
        timestamp(&email_changed.json()["customer"]["updatedAt"])
    );
    assert!(events[3]["data"]["at"].is_string(), "{}", events[3]);

    // Who asked, in which request, under which idempotency key.
    let request_ids = [
        "req-story-create",
        "req-story-rename",
        "req-story-email",
        "req-story-delete",
    ];
    let idempotency_keys = [
        Some("idem-story-create"),
        None,
        Some("idem-story-email"),
        None,
    ];
    for (event, (request_id, idempotency_key)) in events
        .iter()
        .zip(request_ids.iter().zip(idempotency_keys.iter()))
    {
        let metadata = &event["metadata"];
        let actor = metadata["actor"]
            .as_str()
            .unwrap_or_else(|| panic!("{event}"));
        assert!(actor.starts_with("key_"), "{metadata}");
        assert_eq!(actor, test_key_id, "{metadata}");
        assert_eq!(metadata["requestId"], *request_id, "{metadata}");
        assert_eq!(metadata["tenant"], *tenant, "{metadata}");
        // A keyed request's events carry the id of its flow, not the key itself.
        match idempotency_key {
            Some(key) => {
                let flow = metadata["flowId"].as_str().unwrap_or_default();
                assert!(flow.starts_with("req_"), "{metadata}");
                assert!(!metadata.to_string().contains(key), "{metadata}");
            }
            None => assert!(
                metadata.get("flowId").is_none_or(Value::is_null),
                "{metadata}"
            ),
        }
    }
    assert_ne!(
        events[0]["metadata"]["flowId"], events[2]["metadata"]["flowId"],
        "two keys, two flows"
    );
}

#[tokio::test]
async fn an_update_of_email_and_name_at_once_records_email_changed_then_details_updated() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "both@example.com", "name": "Before"}))
        .await;
    let id = customer["id"].as_str().unwrap();

    let response = send_raw(
        app.request(Method::POST, &format!("/v1/customers/{id}"))
            .header("x-request-id", "req-both")
            .json(&json!({"email": "both-after@example.com", "name": "After", "taxId": "T-1"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text);

    let events = events_of(&app, id).await;
    assert_eq!(
        types(&events),
        vec!["CustomerCreated", "EmailChanged", "CustomerDetailsUpdated"],
        "{events:?}"
    );
    assert_well_formed(&events, id);
    assert_eq!(events[1]["data"]["email"], "both-after@example.com");
    assert_eq!(
        events[2]["data"]["changes"],
        json!({"name": "After", "taxId": "T-1"})
    );
    // Both come from one request.
    assert_eq!(events[1]["metadata"]["requestId"], "req-both");
    assert_eq!(events[2]["metadata"]["requestId"], "req-both");
    assert_eq!(
        events[1]["metadata"]["actor"],
        events[2]["metadata"]["actor"]
    );
}

#[tokio::test]
async fn cleared_fields_are_recorded_as_null_changes() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(
            json!({"email": "clear@example.com", "name": "Clear", "billingCity": "Oslo"}),
        )
        .await;
    let id = customer["id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/v1/customers/{id}"),
            json!({"name": null, "billingCity": ""}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let events = events_of(&app, id).await;
    assert_eq!(
        types(&events),
        vec!["CustomerCreated", "CustomerDetailsUpdated"]
    );
    assert_eq!(
        events[1]["data"]["changes"],
        json!({"name": null, "billingCity": null})
    );
}

#[tokio::test]
async fn a_deleted_customers_events_stay_readable() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "gone@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let path = format!("/v1/customers/{id}");
    let (status, body) = app.delete(&path).await;
    assert_eq!(status, 200, "{body}");
    assert_error(&app.get(&path).await, 404, NOT_FOUND);

    let events = events_of(&app, id).await;
    assert_eq!(types(&events), vec!["CustomerCreated", "SoftDeleted"]);
    assert_well_formed(&events, id);
    // Reading them twice gives the same answer: the log does not change under a reader.
    assert_eq!(events_of(&app, id).await, events);
}

#[tokio::test]
async fn another_merchant_and_the_live_key_get_not_found_for_a_customers_events() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "mine@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let path = events_path(id);

    let other = app.other_merchant().await;
    assert_error(
        &app.get_as(&other.test_secret_key, &path).await,
        404,
        NOT_FOUND,
    );
    assert_error(
        &app.get_as(&other.live_secret_key, &path).await,
        404,
        NOT_FOUND,
    );
    assert_error(&app.get_as(app.live_key(), &path).await, 404, NOT_FOUND);
    // The owner still reads them.
    assert_eq!(events_of(&app, id).await.len(), 1);

    // A live customer's events are the live key's only.
    let (status, body) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "live@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let live_id = body["customer"]["id"].as_str().unwrap();
    assert_error(&app.get(&events_path(live_id)).await, 404, NOT_FOUND);
    let live_events = events_of_as(&app, app.live_key(), live_id).await;
    assert_eq!(types(&live_events), vec!["CustomerCreated"]);
    assert_eq!(
        live_events[0]["metadata"]["actor"],
        key_id(&app, "live").await.as_str()
    );
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_malformed_ids_are_bad_requests() {
    let app = TestApp::spawn().await;
    assert_error(
        &app.get(&events_path("cust_0000000000000000000000000000dead"))
            .await,
        404,
        NOT_FOUND,
    );
    for malformed in ["not-a-customer", "cust_", "cust_a-b", "pm_0192"] {
        assert_error(&app.get(&events_path(malformed)).await, 400, INVALID_ID);
    }
}

#[tokio::test]
async fn the_events_endpoint_needs_a_secret_key() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "keyed@example.com"}))
        .await;
    let path = events_path(customer["id"].as_str().unwrap());
    let (status, body) = send(app.client.get(app.url(&path))).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = app.get_as("sk_test_nosuchkey", &path).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "Invalid API key");
}

#[tokio::test]
async fn refused_commands_and_unchanged_updates_add_no_event() {
    let app = TestApp::spawn().await;
    let first = app
        .create_customer(json!({"email": "first@example.com"}))
        .await;
    let second = app
        .create_customer(json!({"email": "second@example.com", "name": "Second"}))
        .await;
    let first_id = first["id"].as_str().unwrap();
    let second_id = second["id"].as_str().unwrap();
    let second_path = format!("/v1/customers/{second_id}");

    // A create with a taken email: 409, and no customer, so no events anywhere.
    let response = app
        .post("/v1/customers", json!({"email": "first@example.com"}))
        .await;
    assert_error(&response, 409, EMAIL_TAKEN);
    // An update to a taken email: 409, and nothing recorded.
    let response = app
        .post(
            &second_path,
            json!({"email": "first@example.com", "name": "Renamed"}),
        )
        .await;
    assert_error(&response, 409, EMAIL_TAKEN_BY_ANOTHER);
    // An invalid update: 400, nothing recorded.
    let (status, body) = app
        .post(&second_path, json!({"billingCountry": "Nowhere"}))
        .await;
    assert_eq!(status, 400, "{body}");
    // An update that changes nothing: 200, nothing recorded.
    let (status, body) = app
        .post(
            &second_path,
            json!({"email": "second@example.com", "name": "Second"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(
        types(&events_of(&app, first_id).await),
        vec!["CustomerCreated"]
    );
    assert_eq!(
        types(&events_of(&app, second_id).await),
        vec!["CustomerCreated"]
    );
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(total, 2);
}

#[tokio::test]
async fn a_replayed_idempotent_request_adds_no_event() {
    let app = TestApp::spawn().await;
    let create = || {
        send_raw(
            app.request(Method::POST, "/v1/customers")
                .header("Idempotency-Key", "idem-once")
                .json(&json!({"email": "once@example.com"})),
        )
    };
    let first = create().await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = create().await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json());

    let id = first.json()["customer"]["id"].as_str().unwrap().to_owned();
    let events = events_of(&app, &id).await;
    assert_eq!(types(&events), vec!["CustomerCreated"]);
    assert!(events[0]["metadata"]["flowId"]
        .as_str()
        .is_some_and(|id| id.starts_with("req_")));
}

#[tokio::test]
async fn each_customer_has_its_own_sequence_while_positions_are_shared() {
    let app = TestApp::spawn().await;
    let a = app.create_customer(json!({"email": "a@example.com"})).await;
    let b = app.create_customer(json!({"email": "b@example.com"})).await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    for (id, name) in [(a_id, "A1"), (b_id, "B1"), (a_id, "A2")] {
        let (status, body) = app
            .post(&format!("/v1/customers/{id}"), json!({"name": name}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let a_events = events_of(&app, a_id).await;
    let b_events = events_of(&app, b_id).await;
    assert_well_formed(&a_events, a_id);
    assert_well_formed(&b_events, b_id);
    assert_eq!(a_events.len(), 3);
    assert_eq!(b_events.len(), 2);
    let position = |e: &Value| e["position"].as_i64().unwrap();
    // Positions follow the order the requests were made in, across customers.
    let order = [
        position(&a_events[0]),
        position(&b_events[0]),
        position(&a_events[1]),
        position(&b_events[1]),
        position(&a_events[2]),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}
