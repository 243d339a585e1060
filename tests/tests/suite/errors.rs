//! Every error is JSON `{"error": "..."}`: bad bodies, bad routes, bad keys. Never a
//! text/plain body, never an internal detail.

use billstream_tests::{send_raw, RawResponse, TestApp};
use reqwest::header::{ALLOW, CONTENT_TYPE};
use reqwest::Method;
use serde_json::json;

/// Words that only an internal error would put in a message.
const INTERNAL_WORDS: [&str; 8] = [
    "sqlx", "panicked", "SELECT", "INSERT", "postgres", "database", "src/", "thread",
];

/// Asserts a JSON error answer with `status` and returns its message.
#[track_caller]
fn assert_json_error(response: &RawResponse, status: u16) -> String {
    assert_eq!(response.status, status, "body: {}", response.text);
    let content_type = response.header(CONTENT_TYPE.as_str()).unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type:?}, body {:?}",
        response.text
    );
    let body = response.json();
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {:?}", response.text))
        .to_owned();
    assert!(!message.is_empty());
    for word in INTERNAL_WORDS {
        assert!(
            !message.to_lowercase().contains(&word.to_lowercase()),
            "{message:?} leaks {word:?}"
        );
    }
    message
}

fn raw_post(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    app.request(Method::POST, path)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
}

#[tokio::test]
async fn malformed_json_is_400_json() {
    let app = TestApp::spawn().await;
    for body in [
        r#"{"email": "a@example.com""#,
        "{email: a@example.com}",
        "not json",
        "[1, 2",
    ] {
        let response = send_raw(raw_post(&app, "/v1/customers", body)).await;
        let message = assert_json_error(&response, 400);
        assert!(message.starts_with("Invalid request body"), "{message}");
    }
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn malformed_json_on_update_is_400_json() {
    let app = TestApp::spawn().await;
    let customer = app.create_customer(json!({"email": "a@example.com"})).await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    let response = send_raw(raw_post(&app, &path, r#"{"name": "#)).await;
    assert_json_error(&response, 400);
}

#[tokio::test]
async fn wrong_types_are_400_json() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"email": 42}),
        json!({"email": ["a@example.com"]}),
        json!({"email": "a@example.com", "name": {"first": "Jane"}}),
        json!({"email": "a@example.com", "taxId": 12345}),
        json!({"email": "a@example.com", "billingCountry": true}),
        json!("a@example.com"),
        json!([{"email": "a@example.com"}]),
    ] {
        let response = send_raw(app.request(Method::POST, "/v1/customers").json(&body)).await;
        let message = assert_json_error(&response, 400);
        assert!(
            message.starts_with("Invalid request body"),
            "{body}: {message}"
        );
    }
    let customer = app.create_customer(json!({"email": "b@example.com"})).await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    for body in [
        json!({"dangerouslyAllowSameEmailForDifferentCustomers": "yes"}),
        json!({"name": 1}),
    ] {
        let response = send_raw(app.request(Method::POST, &path).json(&body)).await;
        assert_json_error(&response, 400);
    }
    assert_eq!(app.customer_ids().await.len(), 1);
}

#[tokio::test]
async fn an_unknown_body_field_is_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let body = json!({"email": "a@example.com", "nmae": "Typo"});
    let response = send_raw(app.request(Method::POST, "/v1/customers").json(&body)).await;
    let message = assert_json_error(&response, 400);
    assert!(message.contains("nmae"), "{message}");
    assert!(app.customer_ids().await.is_empty());

    let customer = app.create_customer(json!({"email": "a@example.com"})).await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    let body = json!({"billing_city": "Paris"});
    let response = send_raw(app.request(Method::POST, &path).json(&body)).await;
    let message = assert_json_error(&response, 400);
    assert!(message.contains("billing_city"), "{message}");
}

#[tokio::test]
async fn a_body_over_1_mib_is_413_json() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"email": "big@example.com", "name": "{}"}}"#,
        "x".repeat(1024 * 1024 + 16)
    );
    let response = send_raw(raw_post(&app, "/v1/customers", big.clone())).await;
    assert_json_error(&response, 413);

    let response =
        send_raw(raw_post(&app, "/v1/customers", big).header("Idempotency-Key", "big-body")).await;
    assert_json_error(&response, 413);
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn an_unknown_route_is_404_json() {
    let app = TestApp::spawn().await;
    for path in [
        "/nope",
        "/v1/nope",
        "/v1/customers/cust_abc/nope",
        "/v2/customers",
    ] {
        let response = send_raw(app.request(Method::GET, path)).await;
        assert_json_error(&response, 404);
    }
    let response = send_raw(app.client.get(app.url("/nope"))).await;
    assert_json_error(&response, 404);
}

#[tokio::test]
async fn a_wrong_method_is_405_json_with_allow() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::PUT, "/v1/customers"),
        (Method::DELETE, "/v1/customers"),
        (Method::PATCH, "/v1/customers/cust_abc"),
        (Method::PUT, "/v1/customers/cust_abc"),
        (Method::POST, "/health"),
    ] {
        let response = send_raw(
            app.request(method.clone(), path)
                .header(CONTENT_TYPE, "application/json")
                .body("{}"),
        )
        .await;
        assert_json_error(&response, 405);
        assert!(
            response.header(ALLOW.as_str()).is_some(),
            "{method} {path}: no Allow header"
        );
    }
}

#[tokio::test]
async fn a_missing_authorization_is_401_json() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/v1/customers"),
        (Method::POST, "/v1/customers"),
        (Method::GET, "/v1/customers/cust_abc"),
        (Method::DELETE, "/v1/customers/cust_abc"),
    ] {
        let response = send_raw(
            app.client
                .request(method.clone(), app.url(path))
                .json(&json!({"email": "a@example.com"})),
        )
        .await;
        assert_json_error(&response, 401);
    }
    let response = send_raw(
        app.client
            .get(app.url("/v1/customers"))
            .header("Authorization", app.test_key()),
    )
    .await;
    assert_json_error(&response, 401);
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn an_unknown_key_is_401_json() {
    let app = TestApp::spawn().await;
    let unknown_test = format!("sk_test_{}", "0".repeat(43));
    let unknown_live = format!("sk_live_{}", "0".repeat(43));
    for key in [
        unknown_test.as_str(),
        unknown_live.as_str(),
        "garbage",
        "pk_test_123",
        "sk_test_",
    ] {
        let response = send_raw(app.request_as(key, Method::GET, "/v1/customers")).await;
        assert_json_error(&response, 401);
        let response = send_raw(
            app.request_as(key, Method::POST, "/v1/customers")
                .json(&json!({"email": "a@example.com"})),
        )
        .await;
        assert_json_error(&response, 401);
    }
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn bad_input_that_reaches_the_database_is_not_a_500() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "a@example.com"})).await;
    // PostgreSQL refuses NUL in text: the API must refuse it first (400), or find nothing.
    let mut wrong = Vec::new();
    for query in [
        "email=%00",
        "email=a%00b@example.com",
        "externalCustomerId=%00",
    ] {
        let response = send_raw(app.request(Method::GET, &format!("/v1/customers?{query}"))).await;
        let empty = json!({"customers": [], "hasMore": false});
        let fine = (response.status == 200 && response.json() == empty)
            || (response.status == 400 && response.json()["error"].is_string());
        if !fine {
            wrong.push(format!(
                "GET /v1/customers?{query}: {} {}",
                response.status, response.text
            ));
        }
    }
    for body in [
        json!({"email": "b@example.com", "name": "nul\u{0}name"}),
        json!({"email": "nul\u{0}@example.com"}),
        json!({"email": "c@example.com", "externalCustomerId": "x\u{0}"}),
    ] {
        let response = send_raw(app.request(Method::POST, "/v1/customers").json(&body)).await;
        if response.status != 400 {
            wrong.push(format!(
                "POST /v1/customers {body}: {} {}",
                response.status, response.text
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "expected 400 or an empty list:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn every_error_body_names_its_message_in_error_and_nothing_internal() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "a@example.com", "externalCustomerId": "ext"}))
        .await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (app.request(Method::GET, "/v1/customers/cust_missing"), 404),
        (app.request(Method::GET, "/v1/customers/bad-id"), 400),
        (app.request(Method::GET, "/v1/customers?limit=0"), 400),
        (
            app.request(Method::GET, "/v1/customers?includePaymentData=maybe"),
            400,
        ),
        (
            app.request(Method::POST, "/v1/customers")
                .json(&json!({"email": "A@example.com"})),
            409,
        ),
        (
            app.request(Method::POST, "/v1/customers")
                .json(&json!({"email": "z@example.com", "externalCustomerId": "ext"})),
            409,
        ),
        (
            app.request(Method::POST, "/v1/customers").json(&json!({})),
            400,
        ),
        (
            app.request(Method::POST, &path)
                .json(&json!({"billingCountry": "Narnia"})),
            400,
        ),
        (
            app.request(Method::POST, &path)
                .json(&json!({"name": "x".repeat(501)})),
            400,
        ),
        (
            app.request(Method::POST, "/v1/customers")
                .header("Idempotency-Key", "k".repeat(300))
                .json(&json!({"email": "k@example.com"})),
            400,
        ),
    ];
    for (request, status) in cases {
        let response = send_raw(request).await;
        assert_json_error(&response, status);
    }
}
