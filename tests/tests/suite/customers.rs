use billstream_tests::TestApp;
use serde_json::json;

#[tokio::test]
async fn create_then_get_returns_the_seed_shape() {
    let app = TestApp::spawn().await;
    let created = app
        .create_customer(json!({
            "email": "newcustomer@example.com",
            "name": "Jane Smith",
            "externalCustomerId": "user_ext_456",
            "billingAddressLine1": "456 Oak Ave",
            "billingAddressLine2": "Suite 200",
            "billingCity": "San Francisco",
            "billingPostalCode": "94102",
            "billingCountry": "US",
            "taxId": "98-7654321"
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("cust_"));
    let (status, body) = app.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["customer"], created);
    assert_eq!(
        body["customer"]["merchantId"],
        app.merchant.merchant_id.as_str()
    );
    assert_eq!(body["customer"]["deletedAt"], serde_json::Value::Null);
}
