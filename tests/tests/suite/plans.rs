//! Plans: `POST /v1/plans` and `GET /v1/plans`, their envelope, rules and tenancy.

use billstream_tests::{assert_error, send, timestamp, TestApp};
use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};

const PLAN_FIELDS: [&str; 11] = [
    "createdAt",
    "creditAllowance",
    "credits",
    "currency",
    "description",
    "id",
    "interval",
    "name",
    "priceId",
    "pricingData",
    "trialDays",
];

fn pro_plan() -> Value {
    json!({
        "name": "Pro",
        "description": "Pro plan",
        "currency": "usd",
        "pricingData": {"components": [{"type": "flat", "amountCents": 5000}]},
        "creditAllowance": 1000
    })
}

fn with_field(field: &str, value: Value) -> Value {
    let mut plan = pro_plan();
    plan[field] = value;
    plan
}

fn without_field(field: &str) -> Value {
    let mut plan = pro_plan();
    plan.as_object_mut().unwrap().remove(field);
    plan
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn plan_ids(list: &Value) -> Vec<String> {
    list["plans"]
        .as_array()
        .unwrap_or_else(|| panic!("no plans array: {list}"))
        .iter()
        .map(|p| p["id"].as_str().expect("plan id").to_owned())
        .collect()
}

#[tokio::test]
async fn create_answers_201_with_the_plan_and_a_price_of_its_own() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/v1/plans", pro_plan()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(keys(&body), vec!["plan"]);
    let plan = &body["plan"];
    assert_eq!(keys(plan), PLAN_FIELDS.to_vec());
    assert!(plan["id"].as_str().unwrap().starts_with("plan_"), "{plan}");
    assert!(
        plan["priceId"].as_str().unwrap().starts_with("price_"),
        "{plan}"
    );
    assert_eq!(plan["name"], "Pro");
    assert_eq!(plan["description"], "Pro plan");
    assert_eq!(plan["currency"], "USD", "currency is stored uppercase");
    assert_eq!(plan["pricingData"], pro_plan()["pricingData"]);
    assert_eq!(plan["creditAllowance"], 1000);
    let age = Utc::now() - timestamp(&plan["createdAt"]);
    assert!(age.num_seconds().abs() < 60, "createdAt is not now: {plan}");
}

#[tokio::test]
async fn optional_fields_left_out_are_null() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/plans",
            json!({"name": "Basic", "currency": "EUR", "pricingData": {"components": []}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plan"]["description"], Value::Null);
    assert_eq!(body["plan"]["creditAllowance"], Value::Null);
    assert_eq!(body["plan"]["pricingData"], json!({"components": []}));
}

#[tokio::test]
async fn broken_rules_are_400_with_their_messages() {
    let app = TestApp::spawn().await;
    let with = with_field;
    let without = without_field;
    let pricing = "pricingData must be an object with a components array";
    let currency = "Currency must be a three-letter ISO 4217 code";
    let cases = [
        (without("name"), "Name is required"),
        (with("name", json!("   ")), "Name is required"),
        (without("currency"), currency),
        (with("currency", json!("US")), currency),
        (with("currency", json!("US$")), currency),
        (without("pricingData"), pricing),
        (with("pricingData", json!({})), pricing),
        (with("pricingData", json!({"components": "flat"})), pricing),
        (with("pricingData", json!([])), pricing),
        (
            with("creditAllowance", json!(-1)),
            "creditAllowance must be zero or more",
        ),
    ];
    for (body, message) in cases {
        let response = app.post("/v1/plans", body.clone()).await;
        assert_error(&response, 400, message);
    }
    let (_, list) = app.get("/v1/plans").await;
    assert_eq!(plan_ids(&list), Vec::<String>::new(), "nothing was created");
}

#[tokio::test]
async fn malformed_json_wrong_types_and_unknown_fields_are_400_json_errors() {
    let app = TestApp::spawn().await;
    let raw = send(
        app.request(Method::POST, "/v1/plans")
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(raw.0, 400, "{}", raw.1);
    assert!(raw.1["error"].is_string(), "{}", raw.1);

    for body in [
        with_field("name", json!(5)),
        with_field("creditAllowance", json!("many")),
        with_field("creditAllowance", json!(1.5)),
        with_field("nmae", json!("typo")),
    ] {
        let (status, error) = app.post("/v1/plans", body.clone()).await;
        assert_eq!(status, 400, "{body} answered {error}");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("Invalid request body")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn list_answers_the_merchants_plans_oldest_first() {
    let app = TestApp::spawn().await;
    let (_, empty) = app.get("/v1/plans").await;
    assert_eq!(empty, json!({"plans": [], "hasMore": false}));

    let mut created = Vec::new();
    for name in ["Basic", "Pro", "Enterprise"] {
        let mut plan = pro_plan();
        plan["name"] = json!(name);
        let (status, body) = app.post("/v1/plans", plan).await;
        assert_eq!(status, 201, "{body}");
        created.push(body["plan"].clone());
    }
    let (status, list) = app.get("/v1/plans").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(keys(&list), vec!["hasMore", "plans"]);
    assert_eq!(
        list["plans"],
        Value::Array(created),
        "same plans, same shape"
    );
}

#[tokio::test]
async fn plans_are_the_tenants_own() {
    let app = TestApp::spawn().await;
    let (_, mine) = app.post("/v1/plans", pro_plan()).await;
    let other = app.other_merchant().await;
    let (_, theirs) = app
        .post_as(&other.test_secret_key, "/v1/plans", pro_plan())
        .await;
    let (_, live) = app.post_as(app.live_key(), "/v1/plans", pro_plan()).await;

    let (_, list) = app.get("/v1/plans").await;
    assert_eq!(plan_ids(&list), vec![mine["plan"]["id"].as_str().unwrap()]);
    let (_, list) = app.get_as(&other.test_secret_key, "/v1/plans").await;
    assert_eq!(
        plan_ids(&list),
        vec![theirs["plan"]["id"].as_str().unwrap()]
    );
    let (_, list) = app.get_as(app.live_key(), "/v1/plans").await;
    assert_eq!(plan_ids(&list), vec![live["plan"]["id"].as_str().unwrap()]);
}

#[tokio::test]
async fn plans_need_a_secret_key() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.client.get(app.url("/v1/plans"))).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(app.client.post(app.url("/v1/plans")).json(&pro_plan())).await;
    assert_eq!(status, 401, "{body}");
    let (_, list) = app.get("/v1/plans").await;
    assert_eq!(list, json!({"plans": [], "hasMore": false}));
}

#[tokio::test]
async fn a_retried_create_with_the_same_idempotency_key_creates_one_plan() {
    let app = TestApp::spawn().await;
    let create = || {
        send(
            app.request(Method::POST, "/v1/plans")
                .header("Idempotency-Key", "plan-once")
                .json(&pro_plan()),
        )
    };
    let (first_status, first) = create().await;
    let (second_status, second) = create().await;
    assert_eq!(
        (first_status, second_status),
        (201, 201),
        "{first} {second}"
    );
    assert_eq!(first, second);
    let (_, list) = app.get("/v1/plans").await;
    assert_eq!(plan_ids(&list).len(), 1);
}

#[tokio::test]
async fn limit_and_starting_after_page_through_the_plans() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let (status, body) = app.post("/v1/plans", pro_plan()).await;
        assert_eq!(status, 201, "{body}");
        created.push(body["plan"]["id"].as_str().unwrap().to_owned());
    }
    let mut walked = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let (status, page) = app.get(&format!("/v1/plans{query}")).await;
        assert_eq!(status, 200, "{page}");
        let ids = plan_ids(&page);
        assert!(ids.len() <= 2, "{page}");
        walked.extend(ids.clone());
        if page["hasMore"] == false {
            break;
        }
        query = format!("?limit=2&startingAfter={}", ids.last().unwrap());
    }
    assert_eq!(walked, created);

    for bad in ["?limit=0", "?limit=1001", "?limit=two"] {
        let (status, body) = app.get(&format!("/v1/plans{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, body) = app.get("/v1/plans?startingAfter=cust_1").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Invalid plan ID"),
        "{body}"
    );
}
