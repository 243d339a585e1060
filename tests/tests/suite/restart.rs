//! What the API acknowledged survives a restart of the service, unchanged.

use billstream_tests::{assert_error, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn every_acknowledged_customer_survives_a_restart_with_identical_fields() {
    let mut app = TestApp::spawn().await;
    let key = app.test_key().to_owned();
    let live_key = app.live_key().to_owned();

    let mut acknowledged: Vec<Value> = Vec::new();
    for i in 0..5 {
        acknowledged.push(
            app.create_customer(json!({
                "email": format!("Keep{i}@Example.com"),
                "name": format!("Customer {i}"),
                "externalCustomerId": format!("ext_{i}"),
                "billingAddressLine1": "1 Main St",
                "billingCity": "Berlin",
                "billingCountry": "de",
                "taxId": format!("DE{i}")
            }))
            .await,
        );
    }
    // An update and a deletion are acknowledged writes too.
    let updated_path = format!("/v1/customers/{}", acknowledged[1]["id"].as_str().unwrap());
    let (status, updated) = app
        .post(
            &updated_path,
            json!({"name": "Renamed", "billingCity": null, "email": "renamed@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    acknowledged[1] = updated["customer"].clone();
    let deleted = acknowledged.remove(3);
    let deleted_path = format!("/v1/customers/{}", deleted["id"].as_str().unwrap());
    let (status, _) = app.delete(&deleted_path).await;
    assert_eq!(status, 200);
    let (status, live) = app
        .post_as(
            &live_key,
            "/v1/customers",
            json!({"email": "live@example.com"}),
        )
        .await;
    assert_eq!(status, 201);
    let live_customer = live["customer"].clone();

    let (_, list_before) = app.get("/v1/customers").await;
    assert_eq!(list_before["customers"], json!(acknowledged));

    let db = app.take_database().expect("the app owns its database");
    app.stop().await;
    let restarted = TestApp::spawn_on(&db.url).await;

    let (status, list) =
        billstream_tests::send(restarted.request_as(&key, Method::GET, "/v1/customers")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list, list_before);
    for customer in &acknowledged {
        let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
        let (status, body) = restarted.get_as(&key, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(&body["customer"], customer);
    }
    assert_error(
        &restarted.get_as(&key, &deleted_path).await,
        404,
        "Customer not found or access denied",
    );
    let (status, body) = restarted
        .get_as(
            &live_key,
            &format!("/v1/customers/{}", live_customer["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["customer"], live_customer);

    // The rules still hold over the old data: its emails and external ids are taken.
    let response = restarted
        .post_as(&key, "/v1/customers", json!({"email": "keep0@example.com"}))
        .await;
    assert_error(&response, 409, "A customer with this email already exists");
    let response = restarted
        .post_as(
            &key,
            "/v1/customers",
            json!({"email": "new@example.com", "externalCustomerId": "ext_2"}),
        )
        .await;
    assert_error(
        &response,
        409,
        "A customer with this externalCustomerId already exists",
    );
    // ...and the deleted customer's email is still free.
    let (status, body) = restarted
        .post_as(&key, "/v1/customers", json!({"email": "keep3@example.com"}))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn an_idempotency_key_is_remembered_across_a_restart() {
    let mut app = TestApp::spawn().await;
    let key = app.test_key().to_owned();
    let body = json!({"email": "once@example.com"});
    let first = billstream_tests::send_raw(
        app.request(Method::POST, "/v1/customers")
            .header("Idempotency-Key", "before-restart")
            .json(&body),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);

    let db = app.take_database().expect("database");
    app.stop().await;
    let restarted = TestApp::spawn_on(&db.url).await;

    let retry = billstream_tests::send_raw(
        restarted
            .request_as(&key, Method::POST, "/v1/customers")
            .header("Idempotency-Key", "before-restart")
            .json(&body),
    )
    .await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.text, first.text);
    assert_eq!(restarted.customer_ids_as(&key).await.len(), 1);
}
