//! A tenant is (merchant, mode): test and live data never see each other, and another
//! merchant's data is "not found".

use billstream_tests::{assert_error, TestApp};
use serde_json::json;

const NOT_FOUND: &str = "Customer not found or access denied";

fn customer_path(customer: &serde_json::Value) -> String {
    format!("/v1/customers/{}", customer["id"].as_str().expect("id"))
}

#[tokio::test]
async fn a_live_key_never_sees_test_customers() {
    let app = TestApp::spawn().await;
    let test_customer = app
        .create_customer(json!({"email": "test@example.com", "externalCustomerId": "ext_1"}))
        .await;
    let path = customer_path(&test_customer);
    let live = app.live_key();

    assert_error(&app.get_as(live, &path).await, 404, NOT_FOUND);
    let (status, list) = app.get_as(live, "/v1/customers").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list, json!({"customers": [], "hasMore": false}));
    let (_, filtered) = app
        .get_as(live, "/v1/customers?email=test@example.com")
        .await;
    assert_eq!(filtered["customers"], json!([]));
    let (_, filtered) = app
        .get_as(live, "/v1/customers?externalCustomerId=ext_1")
        .await;
    assert_eq!(filtered["customers"], json!([]));
    let (_, filtered) = app
        .get_as(live, "/v1/customers?includePaymentData=true")
        .await;
    assert_eq!(filtered["customers"], json!([]));
    assert_error(
        &app.post_as(live, &path, json!({"name": "Live edit"})).await,
        404,
        NOT_FOUND,
    );
    assert_error(&app.delete_as(live, &path).await, 404, NOT_FOUND);

    let (status, fetched) = app.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["customer"], test_customer);
}

#[tokio::test]
async fn a_test_key_never_sees_live_customers() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "live@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let live_customer = body["customer"].clone();
    assert_eq!(
        live_customer["merchantId"],
        app.merchant.merchant_id.as_str()
    );
    let path = customer_path(&live_customer);

    assert_error(&app.get(&path).await, 404, NOT_FOUND);
    assert!(app.customer_ids().await.is_empty());
    assert_error(
        &app.post(&path, json!({"name": "Test edit"})).await,
        404,
        NOT_FOUND,
    );
    assert_error(&app.delete(&path).await, 404, NOT_FOUND);

    let (status, fetched) = app.get_as(app.live_key(), &path).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["customer"], live_customer);
    assert_eq!(
        app.customer_ids_as(app.live_key()).await,
        vec![live_customer["id"].as_str().unwrap()]
    );
}

#[tokio::test]
async fn another_merchants_customer_is_404_for_get_update_and_delete() {
    let app = TestApp::spawn().await;
    let other = app.other_merchant().await;
    let mine = app
        .create_customer(json!({"email": "mine@example.com"}))
        .await;
    let path = customer_path(&mine);
    for key in [
        other.test_secret_key.as_str(),
        other.live_secret_key.as_str(),
    ] {
        assert_error(&app.get_as(key, &path).await, 404, NOT_FOUND);
        assert_error(
            &app.post_as(key, &path, json!({"email": "stolen@example.com"}))
                .await,
            404,
            NOT_FOUND,
        );
        assert_error(&app.delete_as(key, &path).await, 404, NOT_FOUND);
        assert!(app.customer_ids_as(key).await.is_empty());
    }
    let (status, fetched) = app.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(fetched["customer"], mine);
}

#[tokio::test]
async fn another_tenants_customer_answers_exactly_like_a_customer_that_never_existed() {
    let app = TestApp::spawn().await;
    let other = app.other_merchant().await;
    let theirs = app
        .post_as(
            &other.test_secret_key,
            "/v1/customers",
            json!({"email": "theirs@example.com"}),
        )
        .await;
    assert_eq!(theirs.0, 201, "{}", theirs.1);
    let theirs_path = customer_path(&theirs.1["customer"]);
    let never_path = "/v1/customers/cust_0000000000000000000000000000beef";
    assert_eq!(app.get(&theirs_path).await, app.get(never_path).await);
    assert_eq!(app.delete(&theirs_path).await, app.delete(never_path).await);
}

#[tokio::test]
async fn the_same_email_and_external_id_may_exist_once_in_each_tenant() {
    let app = TestApp::spawn().await;
    let other = app.other_merchant().await;
    let body = json!({"email": "shared@example.com", "externalCustomerId": "user_1"});
    let keys = [
        app.test_key().to_owned(),
        app.live_key().to_owned(),
        other.test_secret_key.clone(),
        other.live_secret_key.clone(),
    ];
    let mut ids = Vec::new();
    for key in &keys {
        let (status, created) = app.post_as(key, "/v1/customers", body.clone()).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["customer"]["id"].clone());
    }
    ids.sort_by_key(|id| id.to_string());
    ids.dedup();
    assert_eq!(ids.len(), 4);

    for key in &keys {
        let response = app
            .post_as(key, "/v1/customers", json!({"email": "SHARED@example.com"}))
            .await;
        assert_error(&response, 409, "A customer with this email already exists");
        assert_eq!(app.customer_ids_as(key).await.len(), 1);
    }
}

#[tokio::test]
async fn deleting_in_one_tenant_leaves_the_same_email_in_another_alone() {
    let app = TestApp::spawn().await;
    let test_customer = app
        .create_customer(json!({"email": "both@example.com"}))
        .await;
    let (status, live) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "both@example.com"}),
        )
        .await;
    assert_eq!(status, 201, "{live}");
    let (status, _) = app.delete(&customer_path(&test_customer)).await;
    assert_eq!(status, 200);
    let (status, fetched) = app
        .get_as(app.live_key(), &customer_path(&live["customer"]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["customer"], live["customer"]);
}
