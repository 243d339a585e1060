//! `GET /v1/customers/{id}?version=N` and `?asOf=<timestamp>`: the customer as it was, folded
//! from its events; deleted customers included, other tenants' never.

use billstream_tests::{assert_error, timestamp, TestApp};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

const NOT_FOUND: &str = "Customer not found or access denied";
const INVALID_ID: &str =
    "Invalid customer ID: expected \"cust_\" followed by letters, digits or underscores";

/// An instant as a query value: ISO 8601 in UTC with microseconds, nothing to escape.
fn iso(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Halfway between two instants.
fn between(earlier: DateTime<Utc>, later: DateTime<Utc>) -> DateTime<Utc> {
    assert!(earlier < later, "{earlier} is not before {later}");
    earlier + (later - earlier) / 2
}

fn path(id: &str) -> String {
    format!("/v1/customers/{id}")
}

/// The customer as `query` asks; panics unless the answer is a 200 `{"customer": …}`.
async fn customer_at(app: &TestApp, id: &str, query: &str) -> Value {
    let (status, body) = app.get(&format!("{}?{query}", path(id))).await;
    assert_eq!(status, 200, "{query}: {body}");
    assert_eq!(
        body.as_object()
            .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["customer"]),
        "{query}: {body}"
    );
    body["customer"].clone()
}

async fn updated(app: &TestApp, id: &str, body: Value) -> Value {
    let (status, answer) = app.post(&path(id), body).await;
    assert_eq!(status, 200, "update: {answer}");
    answer["customer"].clone()
}

/// A customer created, renamed, moved to another email and stripped of its city: four
/// versions, returned as the API answered each change.
async fn four_versions(app: &TestApp) -> Vec<Value> {
    let created = app
        .create_customer(json!({
            "email": "past@example.com",
            "name": "First Name",
            "billingCity": "Paris",
            "billingCountry": "fr",
            "externalCustomerId": "ext_past"
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let renamed = updated(app, &id, json!({"name": "Second Name"})).await;
    let moved = updated(app, &id, json!({"email": "present@example.com"})).await;
    let stripped = updated(app, &id, json!({"billingCity": null, "taxId": "TAX-4"})).await;
    let versions = vec![created, renamed, moved, stripped];
    let times: Vec<DateTime<Utc>> = versions
        .iter()
        .map(|v| timestamp(&v["updatedAt"]))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    versions
}

#[tokio::test]
async fn each_version_shows_the_customer_after_that_many_events() {
    let app = TestApp::spawn().await;
    let versions = four_versions(&app).await;
    let id = versions[0]["id"].as_str().unwrap();

    for (n, expected) in versions.iter().enumerate() {
        let version = n + 1;
        assert_eq!(
            customer_at(&app, id, &format!("version={version}")).await,
            *expected,
            "version {version}"
        );
    }
    // What each version holds, spelled out for the first and the last.
    let first = customer_at(&app, id, "version=1").await;
    assert_eq!(first["name"], "First Name");
    assert_eq!(first["email"], "past@example.com");
    assert_eq!(first["billingCity"], "Paris");
    assert_eq!(first["billingCountry"], "FR");
    assert_eq!(first["taxId"], Value::Null);
    assert_eq!(first["createdAt"], first["updatedAt"]);
    assert_eq!(first["deletedAt"], Value::Null);
    let last = customer_at(&app, id, "version=4").await;
    assert_eq!(last["name"], "Second Name");
    assert_eq!(last["email"], "present@example.com");
    assert_eq!(last["billingCity"], Value::Null);
    assert_eq!(last["taxId"], "TAX-4");
    assert_eq!(last["createdAt"], first["createdAt"]);
    // A version past the last is the customer as it is.
    assert_eq!(customer_at(&app, id, "version=5").await, versions[3]);
    assert_eq!(customer_at(&app, id, "version=1000").await, versions[3]);
}

#[tokio::test]
async fn as_of_shows_the_customer_as_it_was_at_that_instant() {
    let app = TestApp::spawn().await;
    let versions = four_versions(&app).await;
    let id = versions[0]["id"].as_str().unwrap();
    let created_at = timestamp(&versions[0]["createdAt"]);
    let times: Vec<DateTime<Utc>> = versions
        .iter()
        .map(|v| timestamp(&v["updatedAt"]))
        .collect();
    assert_eq!(times[0], created_at);

    // At the very instant of creation: the created customer.
    assert_eq!(
        customer_at(&app, id, &format!("asOf={}", iso(created_at))).await,
        versions[0]
    );
    for n in 0..versions.len() {
        // At the instant of a change, the change is in; just before the next one, still so.
        assert_eq!(
            customer_at(&app, id, &format!("asOf={}", iso(times[n]))).await,
            versions[n],
            "at version {}",
            n + 1
        );
        if n + 1 < versions.len() {
            let midway = between(times[n], times[n + 1]);
            assert_eq!(
                customer_at(&app, id, &format!("asOf={}", iso(midway))).await,
                versions[n],
                "between versions {} and {}",
                n + 1,
                n + 2
            );
            let just_before = times[n + 1] - Duration::microseconds(1);
            assert_eq!(
                customer_at(&app, id, &format!("asOf={}", iso(just_before))).await,
                versions[n],
                "just before version {}",
                n + 2
            );
        }
    }
    // Now, and any time later: the customer as it is.
    assert_eq!(
        customer_at(&app, id, &format!("asOf={}", iso(Utc::now()))).await,
        versions[3]
    );
    assert_eq!(
        customer_at(&app, id, "asOf=2999-01-01T00:00:00Z").await,
        versions[3]
    );
}

#[tokio::test]
async fn as_of_reads_any_iso_8601_offset_as_the_same_instant() {
    let app = TestApp::spawn().await;
    let versions = four_versions(&app).await;
    let id = versions[0]["id"].as_str().unwrap();
    let midway = between(
        timestamp(&versions[1]["updatedAt"]),
        timestamp(&versions[2]["updatedAt"]),
    );
    let in_paris = midway
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(SecondsFormat::Micros, false);
    assert!(in_paris.ends_with("+02:00"), "{in_paris}");
    // `+` must be escaped in a query string.
    let escaped = in_paris.replace('+', "%2B");
    assert_eq!(
        customer_at(&app, id, &format!("asOf={escaped}")).await,
        versions[1]
    );
}

#[tokio::test]
async fn before_its_creation_a_customer_is_not_found() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "newborn@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let created_at = timestamp(&customer["createdAt"]);

    for query in [
        format!("asOf={}", iso(created_at - Duration::microseconds(1))),
        format!("asOf={}", iso(created_at - Duration::days(1))),
        "asOf=1970-01-01T00:00:00Z".to_owned(),
        "version=0".to_owned(),
    ] {
        assert_error(
            &app.get(&format!("{}?{query}", path(id))).await,
            404,
            NOT_FOUND,
        );
    }
    assert_eq!(customer_at(&app, id, "version=1").await, customer);
}

#[tokio::test]
async fn a_deleted_customer_can_still_be_read_as_it_was_before_and_after_the_deletion() {
    let app = TestApp::spawn().await;
    let created = app
        .create_customer(json!({"email": "deleted@example.com", "name": "Before"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let renamed = updated(&app, id, json!({"name": "Renamed"})).await;
    let (status, body) = app.delete(&path(id)).await;
    assert_eq!(status, 200, "{body}");
    let after_delete = Utc::now();
    assert_error(&app.get(&path(id)).await, 404, NOT_FOUND);

    // Before the deletion: as it was, not deleted.
    assert_eq!(customer_at(&app, id, "version=1").await, created);
    assert_eq!(customer_at(&app, id, "version=2").await, renamed);
    assert_eq!(
        customer_at(
            &app,
            id,
            &format!("asOf={}", iso(timestamp(&renamed["updatedAt"])))
        )
        .await,
        renamed
    );
    assert_eq!(renamed["deletedAt"], Value::Null);

    // With the deletion: deletedAt set, between the last change and now, the rest unchanged.
    let deleted = customer_at(&app, id, "version=3").await;
    let deleted_at = timestamp(&deleted["deletedAt"]);
    assert!(
        deleted_at > timestamp(&renamed["updatedAt"]) && deleted_at <= after_delete,
        "deletedAt {deleted_at}"
    );
    let mut expected = renamed.clone();
    expected["deletedAt"] = deleted["deletedAt"].clone();
    expected["updatedAt"] = deleted["updatedAt"].clone();
    assert_eq!(deleted, expected);
    assert!(timestamp(&deleted["updatedAt"]) >= timestamp(&renamed["updatedAt"]));
    assert_eq!(customer_at(&app, id, "version=4").await, deleted);
    assert_eq!(
        customer_at(&app, id, &format!("asOf={}", iso(after_delete))).await,
        deleted
    );
    // Just before the deletion it was not deleted yet.
    assert_eq!(
        customer_at(
            &app,
            id,
            &format!("asOf={}", iso(deleted_at - Duration::microseconds(1)))
        )
        .await,
        renamed
    );
}

#[tokio::test]
async fn as_of_and_version_together_are_a_bad_request() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "both@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let query = format!("asOf={}&version=1", iso(Utc::now()));
    let (status, body) = app.get(&format!("{}?{query}", path(id))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_instants_and_versions_are_bad_requests() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "garbage@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    for query in [
        "asOf=garbage",
        "asOf=yesterday",
        "asOf=2024-13-01T00:00:00Z",
        "asOf=",
        "version=-1",
        "version=one",
        "version=1.5",
        "version=",
        // A misspelt parameter is refused, not ignored for the customer as it is now.
        "asof=2024-01-01T00:00:00Z",
    ] {
        let (status, body) = app.get(&format!("{}?{query}", path(id))).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}: {body}"
        );
    }
    // The customer is still there for a well-formed question.
    assert_eq!(customer_at(&app, id, "version=1").await, customer);
}

#[tokio::test]
async fn another_tenants_customer_has_no_past_to_show() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "private@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap();
    let other = app.other_merchant().await;
    let now = iso(Utc::now());
    for query in [
        "version=1".to_owned(),
        "version=1000".to_owned(),
        format!("asOf={now}"),
    ] {
        let target = format!("{}?{query}", path(id));
        for key in [
            other.test_secret_key.as_str(),
            other.live_secret_key.as_str(),
            app.live_key(),
        ] {
            assert_error(&app.get_as(key, &target).await, 404, NOT_FOUND);
        }
    }
    // Deleted, it stays private.
    let (status, body) = app.delete(&path(id)).await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &app.get_as(&other.test_secret_key, &format!("{}?version=1", path(id)))
            .await,
        404,
        NOT_FOUND,
    );
    assert_eq!(customer_at(&app, id, "version=1").await, customer);
}

#[tokio::test]
async fn unknown_ids_have_no_past_and_malformed_ids_are_bad_requests() {
    let app = TestApp::spawn().await;
    let unknown = "cust_0000000000000000000000000000dead";
    for query in ["version=1", "asOf=2030-01-01T00:00:00Z"] {
        assert_error(
            &app.get(&format!("{}?{query}", path(unknown))).await,
            404,
            NOT_FOUND,
        );
        assert_error(
            &app.get(&format!("/v1/customers/not-a-customer?{query}"))
                .await,
            400,
            INVALID_ID,
        );
    }
}

#[tokio::test]
async fn the_latest_version_equals_the_plain_get_exactly() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({
            "email": "Whole.Customer@Example.com",
            "name": "  Jane Smith  ",
            "externalCustomerId": "user_ext_456",
            "billingAddressLine1": "456 Oak Ave",
            "billingAddressLine2": "Suite 200",
            "billingCity": "San Francisco",
            "billingPostalCode": "94102",
            "billingCountry": "us",
            "taxId": "98-7654321"
        }))
        .await;
    let id = customer["id"].as_str().unwrap();
    let check = |version: usize| {
        let app = &app;
        async move {
            let (status, plain) = app.get(&path(id)).await;
            assert_eq!(status, 200, "{plain}");
            assert_eq!(
                customer_at(app, id, &format!("version={version}")).await,
                plain["customer"],
                "version {version}"
            );
            assert_eq!(
                customer_at(app, id, &format!("asOf={}", iso(Utc::now()))).await,
                plain["customer"],
                "asOf now at version {version}"
            );
            plain["customer"].clone()
        }
    };
    assert_eq!(check(1).await, customer);
    updated(&app, id, json!({"billingAddressLine2": "", "taxId": null})).await;
    check(2).await;
    updated(
        &app,
        id,
        json!({"email": "another.one@example.com", "billingCountry": "de", "name": "Jane"}),
    )
    .await;
    // An email and details at once are two events.
    let latest = check(4).await;
    assert_eq!(latest["email"], "another.one@example.com");
    assert_eq!(latest["billingCountry"], "DE");
    assert_eq!(latest["billingAddressLine2"], Value::Null);
    // Version 3 had the new email and not yet the new details.
    let third = customer_at(&app, id, "version=3").await;
    assert_eq!(third["email"], "another.one@example.com");
    assert_eq!(third["billingCountry"], "US");
    assert_eq!(third["name"], customer["name"]);
}
