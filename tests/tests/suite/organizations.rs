//! Organizations: create, add members, the one-organization-per-customer rule (also under
//! concurrency), `includePaymentData`'s organization fields, and the portal's
//! organization-customers with a secret key or a portal session.

use billstream_tests::{assert_error, send, timestamp, TestApp};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

const CUSTOMER_NOT_FOUND: &str = "Customer not found or access denied";
const NOT_FOUND: &str = "Organization not found";
const ALREADY_IN_ONE: &str = "Customer already belongs to an organization";

/// A customer of the merchant `key` names, with an external id for portal sessions.
async fn customer_as(app: &TestApp, key: &str) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let body = json!({"email": format!("{unique}@example.com"), "externalCustomerId": unique});
    let (status, body) = app.post_as(key, "/v1/customers", body).await;
    assert_eq!(status, 201, "create customer: {body}");
    body["customer"]["id"].as_str().unwrap().to_owned()
}

async fn customer(app: &TestApp) -> String {
    customer_as(app, app.test_key()).await
}

/// An organization of the test merchant with `primary`; returns its id.
async fn organization(app: &TestApp, name: &str, primary: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/organizations",
            json!({"name": name, "primaryCustomerId": primary}),
        )
        .await;
    assert_eq!(status, 201, "create organization: {body}");
    body["organization"]["id"].as_str().unwrap().to_owned()
}

async fn add_member(app: &TestApp, organization: &str, customer: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/organizations/{organization}/members"),
        json!({"customerId": customer}),
    )
    .await
}

fn members(customers: &[(&str, &str)]) -> Value {
    customers
        .iter()
        .map(|(id, role)| json!({"id": id, "orgRole": role}))
        .collect()
}

/// A portal session token the merchant made for the customer, found by its external id.
async fn portal_token(app: &TestApp, customer_id: &str) -> String {
    let (_, customer) = app.get(&format!("/v1/customers/{customer_id}")).await;
    let external_id = customer["customer"]["externalCustomerId"].clone();
    let (status, body) = app
        .post(
            "/v1/customers/portal/sessions",
            json!({"externalCustomerId": external_id}),
        )
        .await;
    assert_eq!(status, 201, "create session: {body}");
    body["session"]["token"].as_str().unwrap().to_owned()
}

fn organization_customers(customer_id: &str) -> String {
    format!("/v1/customers/{customer_id}/organization-customers")
}

#[tokio::test]
async fn create_answers_201_with_the_organization() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let (status, body) = app
        .post(
            "/v1/organizations",
            json!({"name": "  Acme, Inc. ", "primaryCustomerId": primary}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let organization = &body["organization"];
    let mut fields: Vec<&String> = organization.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["createdAt", "id", "name", "primaryCustomerId"]);
    assert!(organization["id"].as_str().unwrap().starts_with("org_"));
    assert_eq!(organization["name"], "Acme, Inc.", "the name is trimmed");
    assert_eq!(organization["primaryCustomerId"], primary.as_str());
    timestamp(&organization["createdAt"]);
}

#[tokio::test]
async fn create_refuses_missing_fields_and_customers_it_cannot_see() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    assert_error(
        &app.post("/v1/organizations", json!({"primaryCustomerId": primary}))
            .await,
        400,
        "Name is required",
    );
    assert_error(
        &app.post("/v1/organizations", json!({"name": "Acme"})).await,
        400,
        "primaryCustomerId is required",
    );
    let (status, body) = app
        .post(
            "/v1/organizations",
            json!({"name": "Acme", "primaryCustomerId": 12}),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    let other = app.other_merchant().await;
    let deleted = customer(&app).await;
    app.delete(&format!("/v1/customers/{deleted}")).await;
    for unseen in [
        "cust_doesnotexist".to_owned(),
        customer_as(&app, &other.test_secret_key).await,
        customer_as(&app, app.live_key()).await,
        deleted,
    ] {
        let response = app
            .post(
                "/v1/organizations",
                json!({"name": "Acme", "primaryCustomerId": unseen}),
            )
            .await;
        assert_error(&response, 404, CUSTOMER_NOT_FOUND);
    }
}

#[tokio::test]
async fn members_join_after_the_primary_and_the_answer_lists_them_in_order() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let first = customer(&app).await;
    let second = customer(&app).await;
    let org = organization(&app, "Acme, Inc.", &primary).await;

    let (status, body) = add_member(&app, &org, &first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"]["id"], org.as_str());
    assert_eq!(body["organization"]["primaryCustomerId"], primary.as_str());
    assert_eq!(
        body["customers"],
        members(&[(&primary, "primary"), (&first, "member")])
    );

    let (status, body) = add_member(&app, &org, &second).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["customers"],
        members(&[
            (&primary, "primary"),
            (&first, "member"),
            (&second, "member")
        ])
    );
}

#[tokio::test]
async fn a_customer_belongs_to_one_organization_at_most() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let member = customer(&app).await;
    let org = organization(&app, "Acme", &primary).await;
    add_member(&app, &org, &member).await;

    // Again in the same organization, as member or as its primary.
    for again in [&member, &primary] {
        assert_error(
            &add_member(&app, &org, again).await,
            409,
            "Customer is already a member of this organization",
        );
    }
    // In another organization, as member or as primary.
    let other_primary = customer(&app).await;
    let other_org = organization(&app, "Globex", &other_primary).await;
    for taken in [&member, &primary] {
        assert_error(
            &add_member(&app, &other_org, taken).await,
            409,
            ALREADY_IN_ONE,
        );
        let response = app
            .post(
                "/v1/organizations",
                json!({"name": "Initech", "primaryCustomerId": taken}),
            )
            .await;
        assert_error(&response, 409, ALREADY_IN_ONE);
    }
    let (_, body) = app.get(&organization_customers(&other_primary)).await;
    assert_eq!(body["customers"], members(&[(&other_primary, "primary")]));
}

#[tokio::test]
async fn of_five_organizations_adding_one_customer_at_once_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    let mut organizations = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        let primary = customer(&app).await;
        organizations.push(organization(&app, name, &primary).await);
    }
    let wanted = customer(&app).await;
    let responses = join_all(
        organizations
            .iter()
            .map(|org| add_member(&app, org, &wanted)),
    )
    .await;
    let joined: Vec<_> = responses.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(joined.len(), 1, "{responses:?}");
    for response in responses.iter().filter(|(s, _)| *s != 200) {
        assert_error(response, 409, ALREADY_IN_ONE);
    }
    let (_, body) = app.get(&organization_customers(&wanted)).await;
    assert_eq!(
        body["organization"]["id"],
        joined[0].1["organization"]["id"]
    );
}

#[tokio::test]
async fn adding_to_an_organization_it_cannot_see_or_a_customer_it_cannot_see_is_404() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let member = customer(&app).await;
    let org = organization(&app, "Acme", &primary).await;
    let other = app.other_merchant().await;
    let path = format!("/v1/organizations/{org}/members");
    let body = json!({"customerId": member});

    assert_error(
        &app.post_as(&other.test_secret_key, &path, body.clone())
            .await,
        404,
        NOT_FOUND,
    );
    assert_error(
        &app.post_as(app.live_key(), &path, body.clone()).await,
        404,
        NOT_FOUND,
    );
    assert_error(
        &add_member(&app, "org_doesnotexist", &member).await,
        404,
        NOT_FOUND,
    );
    let (status, error) = add_member(&app, "cust_1", &member).await;
    assert_eq!(status, 400, "{error}");

    let theirs = customer_as(&app, &other.test_secret_key).await;
    assert_error(
        &add_member(&app, &org, &theirs).await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    assert_error(
        &add_member(&app, &org, "cust_doesnotexist").await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    assert_error(
        &app.post(&path, json!({})).await,
        400,
        "customerId is required",
    );
    let (_, body) = app.get(&organization_customers(&primary)).await;
    assert_eq!(body["customers"], members(&[(&primary, "primary")]));
}

#[tokio::test]
async fn include_payment_data_shows_each_customers_organization_and_role() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let member = customer(&app).await;
    let loner = customer(&app).await;
    let org = organization(&app, "Acme", &primary).await;
    add_member(&app, &org, &member).await;

    let (status, body) = app.get("/v1/customers?includePaymentData=true").await;
    assert_eq!(status, 200, "{body}");
    let by_id = |id: &str| {
        body["customers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {body}"))
            .clone()
    };
    let primary_row = by_id(&primary);
    assert_eq!(primary_row["customerOrganizationId"], org.as_str());
    assert_eq!(primary_row["orgRole"], "primary");
    let member_row = by_id(&member);
    assert_eq!(member_row["customerOrganizationId"], org.as_str());
    assert_eq!(member_row["orgRole"], "member");
    let loner_row = by_id(&loner);
    assert_eq!(loner_row["customerOrganizationId"], Value::Null);
    assert_eq!(loner_row["orgRole"], Value::Null);
    assert_eq!(loner_row["totalPaymentsCents"], 0);

    // A page of the list carries the organization of its own customers.
    let (_, page) = app
        .get(&format!(
            "/v1/customers?includePaymentData=true&limit=1&startingAfter={primary}"
        ))
        .await;
    assert_eq!(page["customers"][0]["id"], member.as_str());
    assert_eq!(page["customers"][0]["orgRole"], "member");
}

#[tokio::test]
async fn organization_customers_answers_the_seed_shape_primary_first() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let first = customer(&app).await;
    let second = customer(&app).await;
    let org = organization(&app, "Acme, Inc.", &primary).await;
    add_member(&app, &org, &first).await;
    add_member(&app, &org, &second).await;
    let expected = json!({
        "organization": {"id": org, "name": "Acme, Inc."},
        "customers": members(&[(&primary, "primary"), (&first, "member"), (&second, "member")]),
    });
    for asked in [&primary, &first, &second] {
        let (status, body) = app.get(&organization_customers(asked)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, expected, "asked for {asked}");
    }

    // A deleted member is gone from the organization's answer too.
    let (status, _) = app.delete(&format!("/v1/customers/{first}")).await;
    assert_eq!(status, 200);
    let (_, body) = app.get(&organization_customers(&primary)).await;
    assert_eq!(
        body["customers"],
        members(&[(&primary, "primary"), (&second, "member")])
    );
    assert_error(
        &app.get(&organization_customers(&first)).await,
        404,
        CUSTOMER_NOT_FOUND,
    );
}

#[tokio::test]
async fn organization_customers_of_a_customer_in_none_or_one_it_cannot_see_is_404() {
    let app = TestApp::spawn().await;
    let loner = customer(&app).await;
    assert_error(
        &app.get(&organization_customers(&loner)).await,
        404,
        NOT_FOUND,
    );
    assert_error(
        &app.get(&organization_customers("cust_doesnotexist")).await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    let (status, body) = app.get(&organization_customers("org_1")).await;
    assert_eq!(status, 400, "{body}");

    let other = app.other_merchant().await;
    let theirs = customer_as(&app, &other.test_secret_key).await;
    organization_as(&app, &other.test_secret_key, &theirs).await;
    assert_error(
        &app.get(&organization_customers(&theirs)).await,
        404,
        CUSTOMER_NOT_FOUND,
    );
    let (status, _) = app
        .get_as(&other.test_secret_key, &organization_customers(&theirs))
        .await;
    assert_eq!(status, 200);
    assert_error(
        &app.get_as(app.live_key(), &organization_customers(&theirs))
            .await,
        404,
        CUSTOMER_NOT_FOUND,
    );
}

async fn organization_as(app: &TestApp, key: &str, primary: &str) {
    let (status, body) = app
        .post_as(
            key,
            "/v1/organizations",
            json!({"name": "Theirs", "primaryCustomerId": primary}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_portal_session_reaches_its_own_customers_organization_only() {
    let app = TestApp::spawn().await;
    let primary = customer(&app).await;
    let member = customer(&app).await;
    let org = organization(&app, "Acme", &primary).await;
    add_member(&app, &org, &member).await;
    let token = portal_token(&app, &member).await;

    let (status, body) = app.get_as(&token, &organization_customers(&member)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["customers"],
        members(&[(&primary, "primary"), (&member, "member")])
    );
    // Another customer, even of the same organization, is not the session's to ask about.
    let loner = customer(&app).await;
    for someone_else in [&primary, &loner] {
        assert_error(
            &app.get_as(&token, &organization_customers(someone_else))
                .await,
            404,
            CUSTOMER_NOT_FOUND,
        );
    }
    // The merchant's own endpoints stay closed to a session.
    let (status, _) = app
        .post_as(
            &token,
            "/v1/organizations",
            json!({"name": "Mine", "primaryCustomerId": member}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = send(
        app.request_as(
            &token,
            Method::POST,
            &format!("/v1/organizations/{org}/members"),
        )
        .json(&json!({"customerId": loner})),
    )
    .await;
    assert_eq!(status, 401);
}
