//! Event schema evolution: `SoftDeleted` gained a field in version 2. A version-1 event stored
//! by hand, exactly as the first code wrote it, is read back as the current version by every
//! reader: the aggregate's loader, the rebuild and the catch-up projection. The log itself
//! keeps what was written.

use billstream_tests::{assert_error, TestApp};
use serde_json::json;

const NOT_FOUND: &str = "Customer not found or access denied";

struct Quiet;

impl projections::rebuild::Progress for Quiet {
    fn started(&self, _: u64) {}
    fn advanced(&self, _: u64) {}
}

#[tokio::test]
async fn a_version_1_soft_deleted_is_read_as_the_current_version_everywhere() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "old@example.com", "externalCustomerId": "old"}))
        .await;
    let id = customer["id"].as_str().unwrap().to_owned();
    let tenant = format!("{}:test", app.merchant.merchant_id);

    // The deletion as version 1 of the code stored it: no canceledSubscriptions.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, tenant) \
         VALUES ('Customer', $1, 2, 'SoftDeleted', '1', $2, $3, $4)",
    )
    .bind(&id)
    .bind(json!({"SoftDeleted": {"at": "2026-03-01T12:00:00Z"}}))
    .bind(json!({"tenant": tenant}))
    .bind(&tenant)
    .execute(&app.pool)
    .await
    .expect("store a version 1 event");

    // The aggregate loads it: the customer is deleted, so an update is "not found" (an event
    // that did not decode would be a 500 here).
    assert_error(
        &app.post(&format!("/v1/customers/{id}"), json!({"name": "New"}))
            .await,
        404,
        NOT_FOUND,
    );
    // Time travel folds it too: before it the customer is live, at it the customer is deleted.
    let (status, body) = app.get(&format!("/v1/customers/{id}?version=1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["deletedAt"], json!(null));
    let (status, body) = app.get(&format!("/v1/customers/{id}?version=2")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["deletedAt"], "2026-03-01T12:00:00Z");

    // The catch-up projection applies it: the portal no longer shows the customer.
    assert_error(
        &app.get("/v1/customers/portal/overview?externalCustomerId=old")
            .await,
        404,
        NOT_FOUND,
    );

    // The hand-written event bypassed the inline read model; a rebuild reads it as current.
    let (status, _) = app.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(
        status, 200,
        "the inline read model has not seen the event yet"
    );
    projections::rebuild::rebuild(&app.pool, "customer_list", &Quiet)
        .await
        .expect("rebuild customer_list");
    assert_error(
        &app.get(&format!("/v1/customers/{id}")).await,
        404,
        NOT_FOUND,
    );
    let deleted_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM customer_list WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        deleted_at.map(|t| t.to_rfc3339()),
        Some("2026-03-01T12:00:00+00:00".to_owned())
    );

    // The audit log shows the event as it was written.
    let (status, body) = app.get(&format!("/v1/customers/{id}/events")).await;
    assert_eq!(status, 200, "{body}");
    let stored = &body["events"][1];
    assert_eq!(stored["type"], "SoftDeleted");
    assert_eq!(stored["version"], "1");
    assert_eq!(stored["data"], json!({"at": "2026-03-01T12:00:00Z"}));
}
