//! `GET /openapi.json` describes every route the API serves, and every route it describes is
//! served.

use billstream_tests::{send_raw, TestApp};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

/// Every (method, path) the API serves under /v1. A route added to the router but not to the
/// description, or dropped from the description, fails the test below.
const SERVED: &[(&str, &str)] = &[
    ("get", "/v1/customers"),
    ("post", "/v1/customers"),
    ("get", "/v1/customers/{id}"),
    ("post", "/v1/customers/{id}"),
    ("delete", "/v1/customers/{id}"),
    ("get", "/v1/customers/{id}/events"),
    ("get", "/v1/events"),
    ("get", "/v1/customers/portal/overview"),
    ("post", "/v1/customers/portal/sessions"),
    (
        "post",
        "/v1/customers/portal/set-subscription-payment-method",
    ),
    ("delete", "/v1/customers/portal/payment-methods/{id}"),
    ("get", "/v1/customers/subscription-status"),
    ("get", "/v1/plans"),
    ("post", "/v1/plans"),
    ("post", "/v1/subscriptions"),
    ("get", "/v1/subscriptions/{id}"),
    ("post", "/v1/subscriptions/{id}/cancel"),
    ("post", "/v1/organizations"),
    ("post", "/v1/organizations/{id}/members"),
    ("get", "/v1/customers/{id}/organization-customers"),
    ("post", "/v1/customers/portal/create-setup-intent"),
    (
        "post",
        "/v1/customers/portal/setup-intents/{intentId}/confirm",
    ),
    ("post", "/v1/webhooks/stripe/{merchantId}"),
    ("post", "/v1/webhooks/dodo/{merchantId}"),
    ("get", "/v1/invoices"),
    ("post", "/v1/invoices"),
    ("get", "/v1/invoices/numbering"),
    ("get", "/v1/invoices/{id}"),
    ("post", "/v1/invoices/{id}/finalize"),
    ("post", "/v1/invoices/{id}/pay"),
    ("post", "/v1/invoices/{id}/void"),
    ("post", "/v1/invoices/{id}/credit-notes"),
    ("get", "/v1/invoices/{id}/pdf"),
    ("get", "/v1/payments"),
    ("get", "/v1/payments/{id}"),
    ("get", "/v1/test-clock"),
    ("get", "/v1/customers/portal/invoices"),
    ("get", "/v1/customers/portal/payments"),
    ("post", "/v1/test-clock/advance"),
    ("post", "/v1/credits/grants"),
    ("post", "/v1/credits/grants/{id}/revoke"),
    ("get", "/v1/credits/customers/{customerId}/grants"),
    ("get", "/v1/credits/customers/{customerId}/balance"),
    ("get", "/v1/credits/customers/{customerId}/transactions"),
    ("get", "/v1/customers/portal/credits"),
    ("post", "/v1/usage"),
];

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

async fn document(app: &TestApp) -> Value {
    let response = send_raw(app.client.get(app.url("/openapi.json"))).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response
            .header(CONTENT_TYPE.as_str())
            .is_some_and(|c| c.starts_with("application/json")),
        "content type {:?}",
        response.header(CONTENT_TYPE.as_str())
    );
    let document = response.json();
    assert!(document.is_object(), "not JSON: {}", response.text);
    document
}

/// Every (method, path) the document describes.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("paths object");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.push((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn openapi_json_is_openapi_3_1_without_auth() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["info"]["title"].is_string());
    assert!(document["paths"].is_object());
}

#[tokio::test]
async fn every_served_route_is_in_the_description() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let described = operations(&document);
    let missing: Vec<_> = SERVED
        .iter()
        .filter(|(method, path)| !described.iter().any(|(m, p)| m == method && p == path))
        .collect();
    assert!(
        missing.is_empty(),
        "served but not described: {missing:?}; described: {described:?}"
    );
}

#[tokio::test]
async fn every_described_v1_operation_declares_the_secret_key_and_its_responses() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    for (method, path) in operations(&document) {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operation = &document["paths"][&path][&method];
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
        assert!(
            operation["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty()),
            "{method} {path} names no security"
        );
    }
    assert!(document["components"]["securitySchemes"]["secret_key"].is_object());
}

#[tokio::test]
async fn every_described_v1_operation_is_served() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    // What the router answers for a route it does not have, to tell it from a resource's 404.
    let no_route = send_raw(app.request(Method::GET, "/v1/no-such-route")).await;
    assert_eq!(no_route.status, 404);

    let mut wrong = Vec::new();
    for (method, path) in operations(&document) {
        if !path.starts_with("/v1/") {
            continue;
        }
        // A customer of its own for each call, so that a delete cannot disturb the others.
        let customer = app
            .create_customer(
                json!({"email": format!("{}@example.com", uuid::Uuid::new_v4().simple())}),
            )
            .await;
        let id = customer["id"].as_str().unwrap();
        // Only there does `{id}` name a customer; elsewhere it names nothing that exists.
        let is_customer_path = path.starts_with("/v1/customers/{id}");
        let concrete = path.replace("{id}", id);
        let request = app.request(
            Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
            &concrete,
        );
        let request = if method == "post" {
            request.json(&json!({}))
        } else {
            request
        };
        let response = send_raw(request).await;
        let routed = match response.status {
            405 => false,
            // Customer paths are called with a real customer: its 404 means no route (a 404
            // of something else about it, such as its organization, is the handler's). Other
            // resources' placeholders name nothing, so only the router's own 404 does.
            404 => {
                response.json() != no_route.json()
                    && !(is_customer_path
                        && response.json()["error"] == "Customer not found or access denied")
            }
            _ => true,
        };
        if !routed {
            wrong.push(format!(
                "{method} {path} ({concrete}): {} {}",
                response.status, response.text
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "described but not served:\n{}",
        wrong.join("\n")
    );
}

/// Every `$ref` in `value`, with where it was found.
fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    if let Some(target) = inner.as_str() {
                        found.push((at.to_owned(), target.to_owned()));
                    }
                } else {
                    references(inner, &format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                references(inner, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_in_the_description_resolves() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let mut found = Vec::new();
    references(&document, "", &mut found);
    assert!(!found.is_empty());
    let dangling: Vec<_> = found
        .iter()
        .filter(|(_, target)| {
            target
                .strip_prefix("#/components/schemas/")
                .is_none_or(|name| document["components"]["schemas"][name].is_null())
        })
        .collect();
    assert!(dangling.is_empty(), "unresolved references: {dangling:?}");
}

/// What the layers in front of the handlers answer is documented on every operation they
/// guard: a missing or unknown credential, an address out of its budget of failures, an
/// Idempotency-Key reused, a body too large.
#[tokio::test]
async fn every_operation_documents_what_the_middleware_answers() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let mut missing = Vec::new();
    for (method, path) in operations(&document) {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operation = &document["paths"][&path][&method];
        let authenticated = !path.starts_with("/v1/webhooks/");
        let mut expected = vec!["400"];
        if authenticated {
            expected.extend(["401", "429"]);
            if method == "post" || method == "delete" {
                expected.push("409");
                let has_key = operation["parameters"].as_array().is_some_and(|p| {
                    p.iter()
                        .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
                });
                if !has_key {
                    missing.push(format!("{method} {path}: Idempotency-Key"));
                }
            }
        }
        if operation["requestBody"].is_object() {
            expected.push("413");
        }
        for status in expected {
            let response = &operation["responses"][status];
            if response["content"]["application/json"]["schema"]["$ref"]
                != "#/components/schemas/ErrorBody"
            {
                missing.push(format!("{method} {path}: {status}"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

/// Called without a key, every authenticated operation answers the 401 it documents.
#[tokio::test]
async fn every_authenticated_operation_answers_its_documented_401() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let mut wrong = Vec::new();
    for (method, path) in operations(&document) {
        if !path.starts_with("/v1/") || path.starts_with("/v1/webhooks/") {
            continue;
        }
        let concrete = path
            .replace("{id}", "cust_0")
            .replace("{intentId}", "seti_0");
        let request = app.client.request(
            Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
            app.url(&concrete),
        );
        let response = send_raw(request.json(&json!({}))).await;
        let documented = document["paths"][&path][&method]["responses"]["401"].is_object();
        if response.status != 401 || !documented || !response.json()["error"].is_string() {
            wrong.push(format!(
                "{method} {path}: {} {} (401 documented: {documented})",
                response.status, response.text
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `version` is documented as a 64-bit integer of at least 0, as the log numbers events: a
/// value past that range is refused, not read as some version.
#[tokio::test]
async fn a_version_out_of_the_documented_range_is_refused() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let version = document["paths"]["/v1/customers/{id}"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "version")
        .unwrap()
        .clone();
    assert_eq!(version["schema"]["format"], "int64");
    assert_eq!(version["schema"]["minimum"], 0);

    let customer = app
        .create_customer(json!({"email": "jane@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let (status, body) = app.get(&format!("/v1/customers/{id}?version=1")).await;
    assert_eq!((status, &body["customer"]["id"]), (200, &json!(id)));
    for out_of_range in ["9223372036854775808", "18446744073709551615", "-1"] {
        let (status, body) = app
            .get(&format!("/v1/customers/{id}?version={out_of_range}"))
            .await;
        assert_eq!(status, 400, "version={out_of_range}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
}
