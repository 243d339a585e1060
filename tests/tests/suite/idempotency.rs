//! `Idempotency-Key` on POST and DELETE: a retry gets the stored first response and does
//! nothing again; the same key with another request is a 409; keys are per caller (a secret
//! key's tenant, or a portal session's customer).

use billstream_tests::{assert_error, send_raw, RawResponse, TestApp};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

const KEY_REUSED: &str = "This Idempotency-Key was already used with a different request";

async fn post_with_key(
    app: &TestApp,
    api_key: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> RawResponse {
    send_raw(
        app.request_as(api_key, Method::POST, path)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

async fn delete_with_key(app: &TestApp, path: &str, key: &str) -> RawResponse {
    send_raw(
        app.request(Method::DELETE, path)
            .header("Idempotency-Key", key),
    )
    .await
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_replays_the_first_response_and_creates_one_customer() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "retry@example.com", "name": "Retry"});
    let first = post_with_key(&app, app.test_key(), "/v1/customers", "create-1", &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let customer = first.json()["customer"].clone();
    assert!(customer["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("cust_")));

    for _ in 0..3 {
        let retry = post_with_key(&app, app.test_key(), "/v1/customers", "create-1", &body).await;
        assert_eq!(retry.status, 201, "{}", retry.text);
        assert_eq!(
            retry.text, first.text,
            "the replay is not the stored response"
        );
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert!(retry
            .header(CONTENT_TYPE.as_str())
            .is_some_and(|c| c.starts_with("application/json")));
    }
    assert_eq!(
        app.customer_ids().await,
        vec![customer["id"].as_str().unwrap()]
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_is_409_and_does_nothing() {
    let app = TestApp::spawn().await;
    let first = post_with_key(
        &app,
        app.test_key(),
        "/v1/customers",
        "create-1",
        &json!({"email": "first@example.com"}),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);

    let other = post_with_key(
        &app,
        app.test_key(),
        "/v1/customers",
        "create-1",
        &json!({"email": "second@example.com"}),
    )
    .await;
    assert_error(&(other.status, other.json()), 409, KEY_REUSED);

    let id = first.json()["customer"]["id"].as_str().unwrap().to_owned();
    let on_another_path = post_with_key(
        &app,
        app.test_key(),
        &format!("/v1/customers/{id}"),
        "create-1",
        &json!({"email": "first@example.com"}),
    )
    .await;
    assert_error(
        &(on_another_path.status, on_another_path.json()),
        409,
        KEY_REUSED,
    );

    assert_eq!(app.customer_ids().await, vec![id]);
}

#[tokio::test]
async fn keys_are_per_tenant() {
    let app = TestApp::spawn().await;
    let other = app.other_merchant().await;
    let body = json!({"email": "same@example.com"});
    let tenants = [
        app.test_key().to_owned(),
        app.live_key().to_owned(),
        other.test_secret_key.clone(),
    ];
    let mut ids = Vec::new();
    for api_key in &tenants {
        let response = post_with_key(&app, api_key, "/v1/customers", "shared-key", &body).await;
        assert_eq!(response.status, 201, "{}", response.text);
        assert_eq!(response.header("idempotent-replayed"), Some("false"));
        ids.push(
            response.json()["customer"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ids:?}");
    for (api_key, id) in tenants.iter().zip(&ids) {
        assert_eq!(app.customer_ids_as(api_key).await, vec![id.clone()]);
    }
    // A different body under the other merchant's key is judged only against its own use.
    let response = post_with_key(
        &app,
        &other.test_secret_key,
        "/v1/customers",
        "shared-key",
        &json!({"email": "different@example.com"}),
    )
    .await;
    assert_error(&(response.status, response.json()), 409, KEY_REUSED);
}

#[tokio::test]
async fn a_delete_with_a_key_replays_success_true() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "gone@example.com"}))
        .await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());

    let first = delete_with_key(&app, &path, "delete-1").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json(), json!({"success": true}));

    let retry = delete_with_key(&app, &path, "delete-1").await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(retry.json(), json!({"success": true}));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));

    // Without the key, the customer is simply gone.
    assert_error(
        &app.delete(&path).await,
        404,
        "Customer not found or access denied",
    );
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn an_update_retry_replays_the_first_answer_and_does_not_run_again() {
    let app = TestApp::spawn().await;
    let customer = app.create_customer(json!({"email": "u@example.com"})).await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    let first = post_with_key(
        &app,
        app.test_key(),
        &path,
        "update-1",
        &json!({"name": "A"}),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let (status, _) = app.post(&path, json!({"name": "B"})).await;
    assert_eq!(status, 200);

    let retry = post_with_key(
        &app,
        app.test_key(),
        &path,
        "update-1",
        &json!({"name": "A"}),
    )
    .await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.text, first.text);
    assert_eq!(retry.json()["customer"]["name"], "A");
    let (_, now) = app.get(&path).await;
    assert_eq!(
        now["customer"]["name"], "B",
        "the retry ran the update again"
    );
}

#[tokio::test]
async fn a_stored_409_is_replayed_even_when_the_request_would_now_succeed() {
    let app = TestApp::spawn().await;
    let holder = app
        .create_customer(json!({"email": "taken@example.com"}))
        .await;
    let body = json!({"email": "taken@example.com", "name": "Latecomer"});
    let first = post_with_key(&app, app.test_key(), "/v1/customers", "conflict-1", &body).await;
    assert_error(
        &(first.status, first.json()),
        409,
        "A customer with this email already exists",
    );

    let (status, _) = app
        .delete(&format!("/v1/customers/{}", holder["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);

    let retry = post_with_key(&app, app.test_key(), "/v1/customers", "conflict-1", &body).await;
    assert_eq!(retry.status, 409, "{}", retry.text);
    assert_eq!(retry.text, first.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert!(app.customer_ids().await.is_empty());

    // A fresh key runs the request: the email is free now.
    let fresh = post_with_key(&app, app.test_key(), "/v1/customers", "conflict-2", &body).await;
    assert_eq!(fresh.status, 201, "{}", fresh.text);
}

#[tokio::test]
async fn an_idempotency_key_over_255_characters_is_400() {
    let app = TestApp::spawn().await;
    let response = post_with_key(
        &app,
        app.test_key(),
        "/v1/customers",
        &"k".repeat(256),
        &json!({"email": "long@example.com"}),
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(response.json()["error"].is_string());
    assert!(app.customer_ids().await.is_empty());
}

/// A portal session token for the customer with `external_id`, made with the secret key.
async fn session_of(app: &TestApp, external_id: &str) -> String {
    app.create_customer(json!({
        "email": format!("{external_id}@example.com"),
        "externalCustomerId": external_id,
    }))
    .await;
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": external_id}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn two_customers_sessions_with_one_key_get_their_own_responses() {
    let app = TestApp::spawn().await;
    let alice = session_of(&app, "user_alice").await;
    let bob = session_of(&app, "user_bob").await;
    let path = "/v1/customers/portal/create-setup-intent";
    let first = post_with_key(&app, &alice, path, "setup-1", &json!({})).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let second = post_with_key(&app, &bob, path, "setup-1", &json!({})).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.header("idempotent-replayed"), Some("false"));
    assert_ne!(
        first.json()["sandbox"]["intentId"],
        second.json()["sandbox"]["intentId"],
        "Bob was handed Alice's setup intent"
    );
    // Each session still replays its own.
    let again = post_with_key(&app, &alice, path, "setup-1", &json!({})).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text);
}

/// Sends a keyed POST /v1/plans on a connection of its own and hangs up `after` it was sent,
/// without reading the answer.
async fn post_and_hang_up(app: &TestApp, key: &str, body: &str, after: std::time::Duration) {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /v1/plans HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        app.test_key(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(after).await;
    drop(stream);
}

#[tokio::test]
async fn a_request_its_client_hung_up_on_happens_once_and_its_retry_gets_its_answer() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "Cut",
        "currency": "USD",
        "pricingData": {"components": [{"type": "flat", "amountCents": 100}]}
    });
    let text = body.to_string();
    let cuts = 40;
    for n in 0..cuts {
        let after = std::time::Duration::from_micros(200 * (n % 10));
        post_and_hang_up(&app, &format!("cut-{n}"), &text, after).await;
    }
    for n in 0..cuts {
        let key = format!("cut-{n}");
        let started = std::time::Instant::now();
        let retry = loop {
            let retry = post_with_key(&app, app.test_key(), "/v1/plans", &key, &body).await;
            let in_flight = retry.status == 409
                && retry.json()["code"] == "idempotency_key_in_flight"
                && started.elapsed() < std::time::Duration::from_secs(5);
            if !in_flight {
                break retry;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(retry.status, 201, "retry of {key}: {}", retry.text);
    }
    let (status, plans) = app.get("/v1/plans").await;
    assert_eq!(status, 200, "{plans}");
    assert_eq!(
        plans["plans"].as_array().unwrap().len(),
        cuts as usize,
        "one plan per key, whatever the hang-ups"
    );
}

#[tokio::test]
async fn stored_responses_hold_no_secret_in_clear_and_still_replay() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "sealed@example.com", "externalCustomerId": "ext_sealed"}))
        .await;
    let body = json!({"externalCustomerId": "ext_sealed"});
    let path = "/v1/customers/portal/sessions";
    let key = "session-key-that-must-not-be-stored";
    let first = post_with_key(&app, app.test_key(), path, key, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let token = first.json()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("ps_"));

    let rows: Vec<(String, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT key, response_body FROM idempotency_keys")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (stored_key, stored_body) = &rows[0];
    assert!(!stored_key.contains(key), "the key is stored in clear");
    let stored_body = stored_body.as_deref().expect("a stored response");
    let contains = |needle: &[u8]| stored_body.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(token.as_bytes()),
        "the session token is stored in clear"
    );
    assert!(!contains(b"\"session\""), "the response is stored in clear");

    let replay = post_with_key(&app, app.test_key(), path, key, &body).await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
}

/// What a process killed after its request's effects and before its answer was stored leaves
/// behind: the key held by an instance that is gone (no liveness lock under its key), no
/// response. (`api/tests/crash.rs` kills a real process instead.)
async fn as_if_its_process_died(app: &TestApp) {
    sqlx::query(
        "UPDATE idempotency_keys SET status_code = NULL, response_body = NULL, holder = 123456789",
    )
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_request_whose_process_died_after_its_effects_is_answered_by_its_retry_without_running_twice(
) {
    let app = TestApp::spawn().await;
    let body = json!({"email": "once@example.com"});
    let first = post_with_key(&app, app.test_key(), "/v1/customers", "crash-1", &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    as_if_its_process_died(&app).await;

    let retry = post_with_key(&app, app.test_key(), "/v1/customers", "crash-1", &body).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(
        retry.json()["customer"]["id"],
        first.json()["customer"]["id"],
        "the customer the first run made"
    );
    assert_eq!(app.customer_ids().await.len(), 1, "the create ran once");
    let again = post_with_key(&app, app.test_key(), "/v1/customers", "crash-1", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, retry.text);
}

/// A key whose instance still runs is in flight, however long ago it was claimed: no timer
/// hands it to a retry.
#[tokio::test]
async fn a_key_held_by_a_live_instance_stays_in_flight_however_old() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "held@example.com"});
    let first = post_with_key(&app, app.test_key(), "/v1/customers", "held-1", &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    // Held by this very instance, claimed a day ago, no response: as a request still running.
    let holder: i64 = sqlx::query_scalar(
        "SELECT (objid::int8) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 \
         AND classid::int8 = 1651730798 AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE idempotency_keys SET status_code = NULL, response_body = NULL, holder = $1, \
         created_at = now() - interval '1 day'",
    )
    .bind(holder)
    .execute(&app.pool)
    .await
    .unwrap();
    let retry = post_with_key(&app, app.test_key(), "/v1/customers", "held-1", &body).await;
    assert_eq!(retry.status, 409, "{}", retry.text);
    assert_eq!(retry.json()["code"], "idempotency_key_in_flight");
}

#[tokio::test]
async fn a_request_whose_process_died_before_writing_anything_is_run_by_its_retry() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "same@example.com", "name": "Same"}))
        .await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    // An update that changes nothing writes no event.
    let body = json!({"name": "Same"});
    let first = post_with_key(&app, app.test_key(), &path, "crash-2", &body).await;
    assert_eq!(first.status, 200, "{}", first.text);
    as_if_its_process_died(&app).await;

    let retry = post_with_key(&app, app.test_key(), &path, "crash-2", &body).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    assert_eq!(
        retry.header("idempotent-replayed"),
        Some("false"),
        "it ran again"
    );
    let again = post_with_key(&app, app.test_key(), &path, "crash-2", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}
