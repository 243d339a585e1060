//! The Customers API of the seed, endpoint by endpoint: envelopes, field names, rules and the
//! seed's error messages.

use billstream_tests::{assert_error, send, TestApp};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};

const NOT_FOUND: &str = "Customer not found or access denied";
const EMAIL_REQUIRED: &str = "Email is required";
const EMAIL_TAKEN: &str = "A customer with this email already exists";
const EMAIL_TAKEN_BY_ANOTHER: &str = "Another customer with this email already exists. Use dangerouslyAllowSameEmailForDifferentCustomers to allow.";
const EXTERNAL_ID_TAKEN: &str = "A customer with this externalCustomerId already exists";
const BAD_LIMIT: &str = "limit must be between 1 and 1000";

/// The fields of a customer in the seed's get, create and update responses, and no others.
const CUSTOMER_FIELDS: [&str; 14] = [
    "id",
    "email",
    "name",
    "externalCustomerId",
    "billingAddressLine1",
    "billingAddressLine2",
    "billingCity",
    "billingPostalCode",
    "billingCountry",
    "taxId",
    "merchantId",
    "createdAt",
    "updatedAt",
    "deletedAt",
];

fn seed_customer() -> Value {
    json!({
        "email": "newcustomer@example.com",
        "name": "Jane Smith",
        "externalCustomerId": "user_ext_456",
        "billingAddressLine1": "456 Oak Ave",
        "billingAddressLine2": "Suite 200",
        "billingCity": "San Francisco",
        "billingPostalCode": "94102",
        "billingCountry": "US",
        "taxId": "98-7654321"
    })
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    fields.sort();
    fields
}

fn timestamp(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is not ISO 8601: {e}"))
        .with_timezone(&Utc)
}

fn ids(list: &Value) -> Vec<String> {
    list["customers"]
        .as_array()
        .unwrap_or_else(|| panic!("no customers array: {list}"))
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .collect()
}

fn customer_path(id: &Value) -> String {
    format!("/v1/customers/{}", id.as_str().expect("customer id"))
}

#[tokio::test]
async fn create_answers_201_with_the_seed_customer_envelope() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/v1/customers", seed_customer()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(keys(&body), vec!["customer"]);
    let customer = &body["customer"];
    assert_eq!(keys(customer), sorted(&CUSTOMER_FIELDS));
    assert!(customer["id"].as_str().unwrap().starts_with("cust_"));
    for (field, value) in seed_customer().as_object().unwrap() {
        assert_eq!(&customer[field], value, "field {field}");
    }
    assert_eq!(customer["merchantId"], app.merchant.merchant_id.as_str());
    assert_eq!(customer["deletedAt"], Value::Null);
    assert_eq!(
        timestamp(&customer["createdAt"]),
        timestamp(&customer["updatedAt"])
    );
    let age = Utc::now() - timestamp(&customer["createdAt"]);
    assert!(
        age.num_seconds().abs() < 60,
        "createdAt is not now: {customer}"
    );
}

#[tokio::test]
async fn create_with_only_an_email_leaves_every_other_field_null() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post("/v1/customers", json!({"email": "only@example.com"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let customer = &body["customer"];
    assert_eq!(keys(customer), sorted(&CUSTOMER_FIELDS));
    assert_eq!(customer["email"], "only@example.com");
    for field in [
        "name",
        "externalCustomerId",
        "billingAddressLine1",
        "billingAddressLine2",
        "billingCity",
        "billingPostalCode",
        "billingCountry",
        "taxId",
        "deletedAt",
    ] {
        assert_eq!(customer[field], Value::Null, "field {field}");
    }
}

#[tokio::test]
async fn get_answers_the_customer_in_a_customer_envelope() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let (status, body) = app.get(&customer_path(&created["id"])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "customer": created }));
}

#[tokio::test]
async fn list_answers_a_customers_envelope_with_has_more_in_creation_order() {
    let app = TestApp::spawn().await;
    let first = app.create_customer(seed_customer()).await;
    let second = app
        .create_customer(json!({"email": "second@example.com", "name": "Second"}))
        .await;
    let (status, body) = app.get("/v1/customers").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), vec!["customers", "hasMore"]);
    assert_eq!(body["hasMore"], false);
    assert_eq!(body["customers"], json!([first, second]));
}

#[tokio::test]
async fn list_of_a_merchant_without_customers_is_empty() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/customers").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"customers": [], "hasMore": false}));
}

#[tokio::test]
async fn update_changes_only_the_fields_sent_and_keeps_the_others() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let path = customer_path(&created["id"]);
    let (status, body) = app
        .post(
            &path,
            json!({"name": "John Smith", "billingAddressLine1": "456 Oak Ave West"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(keys(&body), vec!["customer"]);
    let updated = &body["customer"];
    assert_eq!(keys(updated), sorted(&CUSTOMER_FIELDS));
    let mut expected = created.clone();
    expected["name"] = json!("John Smith");
    expected["billingAddressLine1"] = json!("456 Oak Ave West");
    expected["updatedAt"] = updated["updatedAt"].clone();
    assert_eq!(updated, &expected);
    assert!(timestamp(&updated["updatedAt"]) > timestamp(&created["updatedAt"]));
    assert_eq!(updated["createdAt"], created["createdAt"]);

    let (status, fetched) = app.get(&path).await;
    assert_eq!(status, 200);
    assert_eq!(&fetched["customer"], updated);
}

#[tokio::test]
async fn update_of_every_seed_field_answers_the_seed_example() {
    let app = TestApp::spawn().await;
    let created = app
        .create_customer(json!({"email": "customer@example.com"}))
        .await;
    let changes = json!({
        "email": "updated@example.com",
        "name": "Updated Name",
        "externalCustomerId": "user_ext_updated",
        "billingAddressLine1": "789 Pine St",
        "billingAddressLine2": "Floor 3",
        "billingCity": "Seattle",
        "billingPostalCode": "98101",
        "billingCountry": "US",
        "taxId": "11-2233445"
    });
    let (status, body) = app
        .post(&customer_path(&created["id"]), changes.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    for (field, value) in changes.as_object().unwrap() {
        assert_eq!(&body["customer"][field], value, "field {field}");
    }
    assert_eq!(body["customer"]["id"], created["id"]);
}

#[tokio::test]
async fn update_with_null_or_an_empty_string_clears_a_field() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let path = customer_path(&created["id"]);
    let (status, body) = app
        .post(
            &path,
            json!({"name": null, "billingCity": "", "taxId": "  "}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let customer = &body["customer"];
    assert_eq!(customer["name"], Value::Null);
    assert_eq!(customer["billingCity"], Value::Null);
    assert_eq!(customer["taxId"], Value::Null);
    assert_eq!(customer["billingAddressLine1"], "456 Oak Ave");
    assert_eq!(customer["externalCustomerId"], "user_ext_456");
    assert_eq!(customer["email"], "newcustomer@example.com");

    let (_, fetched) = app.get(&path).await;
    assert_eq!(&fetched["customer"], customer);
}

#[tokio::test]
async fn update_with_nothing_new_keeps_updated_at() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let path = customer_path(&created["id"]);

    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"], created);

    let (status, body) = app
        .post(
            &path,
            json!({"name": "Jane Smith", "billingCity": "San Francisco", "email": "newcustomer@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"], created);

    let (_, fetched) = app.get(&path).await;
    assert_eq!(fetched["customer"]["updatedAt"], created["updatedAt"]);
}

#[tokio::test]
async fn update_cannot_clear_the_email() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let path = customer_path(&created["id"]);
    for body in [json!({"email": ""}), json!({"email": null})] {
        let response = app.post(&path, body.clone()).await;
        assert_error(&response, 400, EMAIL_REQUIRED);
    }
    let (_, fetched) = app.get(&path).await;
    assert_eq!(fetched["customer"], created);
}

#[tokio::test]
async fn create_without_an_email_or_with_a_blank_one_is_400_email_is_required() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"name": "No Email"}),
        json!({}),
        json!({"email": ""}),
        json!({"email": "   "}),
        json!({"email": null}),
    ] {
        let response = app.post("/v1/customers", body.clone()).await;
        assert_error(&response, 400, EMAIL_REQUIRED);
    }
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn create_with_a_malformed_email_is_400() {
    let app = TestApp::spawn().await;
    for email in ["not-an-email", "a@b", "@example.com", "a b@example.com"] {
        let (status, body) = app.post("/v1/customers", json!({"email": email})).await;
        assert_eq!(status, 400, "{email}: {body}");
        assert_eq!(body["error"], "Invalid email address", "{email}");
    }
    assert!(app.customer_ids().await.is_empty());
}

#[tokio::test]
async fn email_keeps_its_case_but_is_unique_case_insensitively() {
    let app = TestApp::spawn().await;
    let created = app
        .create_customer(json!({"email": "Jane.Doe@Example.COM"}))
        .await;
    assert_eq!(created["email"], "Jane.Doe@Example.COM");
    let (_, fetched) = app.get(&customer_path(&created["id"])).await;
    assert_eq!(fetched["customer"]["email"], "Jane.Doe@Example.COM");

    for email in [
        "jane.doe@example.com",
        "JANE.DOE@EXAMPLE.COM",
        "Jane.Doe@Example.COM",
    ] {
        let response = app.post("/v1/customers", json!({"email": email})).await;
        assert_error(&response, 409, EMAIL_TAKEN);
    }
    assert_eq!(app.customer_ids().await.len(), 1);
}

#[tokio::test]
async fn a_customer_may_change_the_case_of_its_own_email() {
    let app = TestApp::spawn().await;
    let created = app
        .create_customer(json!({"email": "jane@example.com"}))
        .await;
    let (status, body) = app
        .post(
            &customer_path(&created["id"]),
            json!({"email": "Jane@Example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["email"], "Jane@Example.com");
}

#[tokio::test]
async fn unknown_customer_id_is_404_for_get_update_and_delete() {
    let app = TestApp::spawn().await;
    let path = "/v1/customers/cust_0000000000000000000000000000dead";
    assert_error(&app.get(path).await, 404, NOT_FOUND);
    assert_error(&app.post(path, json!({"name": "X"})).await, 404, NOT_FOUND);
    assert_error(&app.delete(path).await, 404, NOT_FOUND);
    let seed_style = "/v1/customers/cust_stable_123";
    assert_error(&app.get(seed_style).await, 404, NOT_FOUND);
}

#[tokio::test]
async fn another_merchants_customer_is_404_with_the_seed_message() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let path = customer_path(&created["id"]);
    let other = app.other_merchant().await;
    let key = other.test_secret_key.as_str();
    assert_error(&app.get_as(key, &path).await, 404, NOT_FOUND);
    assert_error(
        &app.post_as(key, &path, json!({"name": "Hijacked"})).await,
        404,
        NOT_FOUND,
    );
    assert_error(&app.delete_as(key, &path).await, 404, NOT_FOUND);
    let (_, fetched) = app.get(&path).await;
    assert_eq!(fetched["customer"], created);
}

#[tokio::test]
async fn a_live_key_reading_a_test_customer_gets_404() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let response = app
        .get_as(app.live_key(), &customer_path(&created["id"]))
        .await;
    assert_error(&response, 404, NOT_FOUND);
}

#[tokio::test]
async fn delete_answers_success_true_and_the_customer_is_gone_everywhere() {
    let app = TestApp::spawn().await;
    let kept = app
        .create_customer(json!({"email": "kept@example.com"}))
        .await;
    let deleted = app.create_customer(seed_customer()).await;
    let path = customer_path(&deleted["id"]);

    let (status, body) = app.delete(&path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"success": true}));

    assert_error(&app.get(&path).await, 404, NOT_FOUND);
    assert_error(
        &app.post(&path, json!({"name": "Back"})).await,
        404,
        NOT_FOUND,
    );
    assert_error(&app.delete(&path).await, 404, NOT_FOUND);

    let (status, list) = app.get("/v1/customers").await;
    assert_eq!(status, 200);
    assert_eq!(list["customers"], json!([kept]));
    let (_, filtered) = app.get("/v1/customers?email=newcustomer@example.com").await;
    assert_eq!(filtered["customers"], json!([]));
    let (_, filtered) = app
        .get("/v1/customers?externalCustomerId=user_ext_456")
        .await;
    assert_eq!(filtered["customers"], json!([]));
}

#[tokio::test]
async fn a_deleted_customers_email_and_external_id_are_free_for_a_new_customer() {
    let app = TestApp::spawn().await;
    let deleted = app.create_customer(seed_customer()).await;
    let (status, _) = app.delete(&customer_path(&deleted["id"])).await;
    assert_eq!(status, 200);

    let (status, body) = app
        .post(
            "/v1/customers",
            json!({"email": "NewCustomer@example.com", "externalCustomerId": "user_ext_456"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let reborn = &body["customer"];
    assert_ne!(reborn["id"], deleted["id"]);
    assert_eq!(reborn["email"], "NewCustomer@example.com");
    assert_eq!(reborn["externalCustomerId"], "user_ext_456");
    assert_eq!(
        app.customer_ids().await,
        vec![reborn["id"].as_str().unwrap()]
    );
}

#[tokio::test]
async fn a_deleted_customers_email_is_free_for_an_update_of_another_customer() {
    let app = TestApp::spawn().await;
    let deleted = app
        .create_customer(json!({"email": "gone@example.com"}))
        .await;
    let other = app
        .create_customer(json!({"email": "other@example.com"}))
        .await;
    let (status, _) = app.delete(&customer_path(&deleted["id"])).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            &customer_path(&other["id"]),
            json!({"email": "gone@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["email"], "gone@example.com");
}

#[tokio::test]
async fn update_to_another_customers_email_is_409_with_the_seed_message() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "taken@example.com"}))
        .await;
    let mover = app
        .create_customer(json!({"email": "mover@example.com"}))
        .await;
    let path = customer_path(&mover["id"]);
    for email in ["taken@example.com", "TAKEN@example.com"] {
        let response = app
            .post(&path, json!({"email": email, "name": "Renamed"}))
            .await;
        assert_error(&response, 409, EMAIL_TAKEN_BY_ANOTHER);
    }
    let response = app
        .post(
            &path,
            json!({"email": "taken@example.com", "dangerouslyAllowSameEmailForDifferentCustomers": false}),
        )
        .await;
    assert_error(&response, 409, EMAIL_TAKEN_BY_ANOTHER);
    // A refused update changes nothing, not even the fields sent beside the email.
    let (_, fetched) = app.get(&path).await;
    assert_eq!(fetched["customer"], mover);
}

#[tokio::test]
async fn dangerously_allow_same_email_for_different_customers_allows_a_shared_email() {
    let app = TestApp::spawn().await;
    let first = app
        .create_customer(json!({"email": "duplicate@example.com"}))
        .await;
    let second = app
        .create_customer(json!({"email": "second@example.com"}))
        .await;
    let (status, body) = app
        .post(
            &customer_path(&second["id"]),
            json!({"email": "duplicate@example.com", "dangerouslyAllowSameEmailForDifferentCustomers": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer"]["email"], "duplicate@example.com");
    assert_eq!(body["customer"]["id"], second["id"]);

    let (_, first_now) = app.get(&customer_path(&first["id"])).await;
    assert_eq!(first_now["customer"], first);
    let (status, list) = app.get("/v1/customers?email=duplicate@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&list),
        vec![
            first["id"].as_str().unwrap(),
            second["id"].as_str().unwrap()
        ]
    );
}

/// Once the only live holders of an email share it, nobody may take it exclusively: not a
/// new customer, not an update without the dangerous flag.
#[tokio::test]
async fn an_email_held_only_by_shared_customers_is_refused_to_new_customers() {
    let app = TestApp::spawn().await;
    let first = app
        .create_customer(json!({"email": "shared@example.com"}))
        .await;
    let second = app
        .create_customer(json!({"email": "second@example.com"}))
        .await;
    let (status, body) = app
        .post(
            &customer_path(&second["id"]),
            json!({"email": "shared@example.com", "dangerouslyAllowSameEmailForDifferentCustomers": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.delete(&customer_path(&first["id"])).await;
    assert_eq!(status, 200);

    let (status, body) = app
        .post("/v1/customers", json!({"email": "SHARED@example.com"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], EMAIL_TAKEN);
    let third = app
        .create_customer(json!({"email": "third@example.com"}))
        .await;
    let (status, body) = app
        .post(
            &customer_path(&third["id"]),
            json!({"email": "Shared@Example.com"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], EMAIL_TAKEN_BY_ANOTHER);

    let (_, list) = app.get("/v1/customers?email=shared@example.com").await;
    assert_eq!(ids(&list), vec![second["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn external_customer_id_is_unique_per_tenant_on_create_and_update() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "a@example.com", "externalCustomerId": "user_1"}))
        .await;
    let response = app
        .post(
            "/v1/customers",
            json!({"email": "b@example.com", "externalCustomerId": "user_1"}),
        )
        .await;
    assert_error(&response, 409, EXTERNAL_ID_TAKEN);

    let b = app
        .create_customer(json!({"email": "b@example.com", "externalCustomerId": "user_2"}))
        .await;
    let response = app
        .post(
            &customer_path(&b["id"]),
            json!({"externalCustomerId": "user_1"}),
        )
        .await;
    assert_error(&response, 409, EXTERNAL_ID_TAKEN);
    assert_eq!(app.customer_ids().await.len(), 2);

    // Another tenant has ids of its own.
    let (status, body) = app
        .post_as(
            app.live_key(),
            "/v1/customers",
            json!({"email": "a@example.com", "externalCustomerId": "user_1"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn include_payment_data_adds_zero_aggregates_and_null_organization() {
    let app = TestApp::spawn().await;
    let created = app.create_customer(seed_customer()).await;
    let (status, body) = app.get("/v1/customers?includePaymentData=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hasMore"], false);
    let customers = body["customers"].as_array().expect("customers");
    assert_eq!(customers.len(), 1);
    let customer = &customers[0];
    let mut expected_fields = CUSTOMER_FIELDS.to_vec();
    expected_fields.extend([
        "totalPaymentsCents",
        "paymentCount",
        "currency",
        "customerOrganizationId",
        "orgRole",
    ]);
    assert_eq!(keys(customer), sorted(&expected_fields));
    assert_eq!(customer["totalPaymentsCents"], json!(0));
    assert_eq!(customer["paymentCount"], json!(0));
    assert_eq!(customer["currency"], Value::Null);
    assert_eq!(customer["customerOrganizationId"], Value::Null);
    assert_eq!(customer["orgRole"], Value::Null);
    for field in CUSTOMER_FIELDS {
        assert_eq!(customer[field], created[field], "field {field}");
    }

    let (status, basic) = app.get("/v1/customers?includePaymentData=false").await;
    assert_eq!(status, 200);
    assert_eq!(basic["customers"], json!([created]));
}

#[tokio::test]
async fn list_filters_by_email_case_insensitively() {
    let app = TestApp::spawn().await;
    let jane = app
        .create_customer(json!({"email": "Jane@Example.com"}))
        .await;
    app.create_customer(json!({"email": "john@example.com"}))
        .await;
    for query in ["jane@example.com", "JANE@EXAMPLE.COM", "Jane@Example.com"] {
        let (status, body) = app.get(&format!("/v1/customers?email={query}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["customers"], json!([jane]), "email={query}");
        assert_eq!(body["hasMore"], false);
    }
    let (status, body) = app.get("/v1/customers?email=nobody@example.com").await;
    assert_eq!(status, 200);
    assert_eq!(body["customers"], json!([]));
}

#[tokio::test]
async fn list_filters_by_external_customer_id() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "a@example.com", "externalCustomerId": "user_a"}))
        .await;
    let b = app
        .create_customer(json!({"email": "b@example.com", "externalCustomerId": "user_b"}))
        .await;
    app.create_customer(json!({"email": "c@example.com"})).await;
    let (status, body) = app.get("/v1/customers?externalCustomerId=user_b").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customers"], json!([b]));
    let (status, body) = app.get("/v1/customers?externalCustomerId=USER_B").await;
    assert_eq!(status, 200);
    assert_eq!(body["customers"], json!([]));
}

#[tokio::test]
async fn pagination_walks_every_page_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.create_customer(json!({"email": format!("page{i}@example.com")}))
            .await;
    }
    let all = app.customer_ids().await;
    assert_eq!(all.len(), 7);

    let mut walked = Vec::new();
    let mut pages = Vec::new();
    let mut path = "/v1/customers?limit=3".to_owned();
    loop {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = ids(&body);
        pages.push((page.len(), body["hasMore"].clone()));
        walked.extend(page.iter().cloned());
        if body["hasMore"] != true {
            break;
        }
        let last = page.last().expect("a page with more after it is not empty");
        path = format!("/v1/customers?limit=3&startingAfter={last}");
        assert!(pages.len() <= 7, "pagination does not end");
    }
    assert_eq!(
        pages,
        vec![(3, json!(true)), (3, json!(true)), (1, json!(false))]
    );
    assert_eq!(walked, all);

    // A limit equal to the count has nothing more; one past the last id is an empty page.
    let (_, body) = app.get("/v1/customers?limit=7").await;
    assert_eq!((ids(&body), &body["hasMore"]), (all.clone(), &json!(false)));
    let (_, body) = app.get("/v1/customers?limit=6").await;
    assert_eq!((ids(&body).len(), &body["hasMore"]), (6, &json!(true)));
    let (status, body) = app
        .get(&format!("/v1/customers?startingAfter={}", all[6]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"customers": [], "hasMore": false}));
    let (_, body) = app
        .get(&format!("/v1/customers?startingAfter={}", all[4]))
        .await;
    assert_eq!(ids(&body), all[5..].to_vec());
}

#[tokio::test]
async fn a_limit_outside_1_to_1000_is_400() {
    let app = TestApp::spawn().await;
    for limit in ["0", "1001", "-1"] {
        let response = app.get(&format!("/v1/customers?limit={limit}")).await;
        assert_error(&response, 400, BAD_LIMIT);
    }
    let (status, body) = app.get("/v1/customers?limit=abc").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string(), "{body}");
    for limit in ["1", "1000"] {
        let (status, body) = app.get(&format!("/v1/customers?limit={limit}")).await;
        assert_eq!(status, 200, "limit={limit}: {body}");
    }
}

#[tokio::test]
async fn malformed_customer_ids_are_400_not_500() {
    let app = TestApp::spawn().await;
    let long = format!("cust_{}", "a".repeat(80));
    for id in [
        "not-a-customer",
        "pm_123",
        "cust_",
        "cust_a%27b",
        "cust_a%20b",
        "cust_%00",
        long.as_str(),
    ] {
        let path = format!("/v1/customers/{id}");
        for (method, body) in [
            (Method::GET, None),
            (Method::POST, Some(json!({"name": "X"}))),
            (Method::DELETE, None),
        ] {
            let mut request = app.request(method.clone(), &path);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let (status, response) = send(request).await;
            assert_eq!(status, 400, "{method} {path}: {response}");
            assert!(
                response["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("Invalid customer ID")),
                "{method} {path}: {response}"
            );
        }
    }
    let (status, body) = app.get("/v1/customers?startingAfter=not-an-id").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn billing_country_is_a_two_letter_code_kept_uppercase() {
    let app = TestApp::spawn().await;
    let created = app
        .create_customer(json!({"email": "c@example.com", "billingCountry": "de"}))
        .await;
    assert_eq!(created["billingCountry"], "DE");
    let (status, body) = app
        .post(
            "/v1/customers",
            json!({"email": "d@example.com", "billingCountry": "Germany"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("billingCountry")));
}
