//! Liveness, readiness and request ids.

use billstream_tests::{send_raw, TestApp};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_answers_200_without_auth() {
    let app = TestApp::spawn().await;
    let response = send_raw(app.client.get(app.url("/health"))).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json(), json!({"status": "ok"}));
    assert!(response
        .header(CONTENT_TYPE.as_str())
        .is_some_and(|c| c.starts_with("application/json")));
}

#[tokio::test]
async fn ready_answers_200_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let response = send_raw(app.client.get(app.url("/ready"))).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json(), json!({"status": "ready"}));
}

#[tokio::test]
async fn health_and_ready_ignore_a_bad_key() {
    let app = TestApp::spawn().await;
    for path in ["/health", "/ready"] {
        let response = send_raw(app.request_as("sk_test_unknown", Method::GET, path)).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text);
    }
}

#[tokio::test]
async fn every_response_carries_a_fresh_x_request_id() {
    let app = TestApp::spawn().await;
    let requests = [
        app.client.get(app.url("/health")),
        app.client.get(app.url("/health")),
        app.client.get(app.url("/ready")),
        app.client.get(app.url("/openapi.json")),
        app.request(Method::GET, "/v1/customers"),
        app.request(Method::POST, "/v1/customers")
            .json(&json!({"email": "id@example.com"})),
        app.request(Method::GET, "/v1/customers/cust_missing"),
        app.client.get(app.url("/v1/customers")),
        app.client.get(app.url("/no-such-route")),
    ];
    let mut ids = Vec::new();
    for request in requests {
        let response = send_raw(request).await;
        let id = response
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on a {} answer", response.status))
            .to_owned();
        assert!(!id.trim().is_empty());
        ids.push(id);
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "request ids repeat: {ids:?}");
}

#[tokio::test]
async fn a_request_id_sent_by_the_caller_comes_back() {
    let app = TestApp::spawn().await;
    for request in [
        app.client.get(app.url("/health")),
        app.request(Method::GET, "/v1/customers"),
        app.request(Method::GET, "/v1/customers/bad-id"),
    ] {
        let response = send_raw(request.header("x-request-id", "req-from-caller-42")).await;
        assert_eq!(response.header("x-request-id"), Some("req-from-caller-42"));
    }
}
