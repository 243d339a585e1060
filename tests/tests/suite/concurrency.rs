//! Rules that must hold when requests race: uniqueness and no lost updates.

use std::collections::BTreeMap;

use billstream_tests::TestApp;
use futures::future::join_all;
use serde_json::{json, Value};

#[tokio::test]
async fn of_30_simultaneous_creates_with_one_email_in_mixed_case_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    let spellings = [
        "race@example.com",
        "Race@Example.com",
        "RACE@EXAMPLE.COM",
        "rAcE@example.COM",
        "race@EXAMPLE.com",
    ];
    let requests = (0..30).map(|i| {
        let email = spellings[i % spellings.len()];
        app.post(
            "/v1/customers",
            json!({"email": email, "name": format!("Racer {i}")}),
        )
    });
    let responses = join_all(requests).await;

    let winners: Vec<&(u16, Value)> = responses
        .iter()
        .filter(|(status, _)| (200..300).contains(status))
        .collect();
    let conflicts = responses
        .iter()
        .filter(|(status, body)| {
            *status == 409 && body["error"] == "A customer with this email already exists"
        })
        .count();
    let others: Vec<_> = responses
        .iter()
        .filter(|(status, _)| *status != 409 && !(200..300).contains(status))
        .collect();
    assert_eq!(
        (winners.len(), conflicts),
        (1, 29),
        "other answers: {others:?}"
    );

    let winner = &winners[0].1["customer"];
    let (status, list) = app.get("/v1/customers").await;
    assert_eq!(status, 200);
    assert_eq!(list["customers"], json!([winner]));
}

#[tokio::test]
async fn of_concurrent_creates_with_one_external_customer_id_exactly_one_succeeds() {
    let app = TestApp::spawn().await;
    let requests = (0..15).map(|i| {
        app.post(
            "/v1/customers",
            json!({"email": format!("ext{i}@example.com"), "externalCustomerId": "user_shared"}),
        )
    });
    let responses = join_all(requests).await;
    let created: Vec<_> = responses
        .iter()
        .filter(|(status, _)| (200..300).contains(status))
        .collect();
    let conflicts = responses
        .iter()
        .filter(|(status, body)| {
            *status == 409
                && body["error"] == "A customer with this externalCustomerId already exists"
        })
        .count();
    assert_eq!((created.len(), conflicts), (1, 14), "{responses:?}");

    let (_, list) = app
        .get("/v1/customers?externalCustomerId=user_shared")
        .await;
    assert_eq!(list["customers"], json!([created[0].1["customer"]]));
    assert_eq!(app.customer_ids().await.len(), 1);
}

/// The detail fields an update can set, each with a value that is valid for it.
fn field_value(field: &str, i: usize) -> String {
    match field {
        "billingCountry" => ["DE", "FR", "NL", "IT"][i / 8].to_owned(),
        _ => format!("{field} {i}"),
    }
}

const FIELDS: [&str; 8] = [
    "name",
    "externalCustomerId",
    "billingAddressLine1",
    "billingAddressLine2",
    "billingCity",
    "billingPostalCode",
    "billingCountry",
    "taxId",
];

#[tokio::test]
async fn twenty_concurrent_updates_of_one_customer_all_succeed_and_none_is_lost() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "busy@example.com"}))
        .await;
    let id = customer["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/customers/{id}");

    // Update i sets one field to a value no other update uses; fields repeat every 8.
    let updates: Vec<(&str, String)> = (0..20)
        .map(|i| {
            let field = FIELDS[i % FIELDS.len()];
            (field, field_value(field, i))
        })
        .collect();
    let responses = join_all(
        updates
            .iter()
            .map(|(field, value)| app.post(&path, json!({ *field: value }))),
    )
    .await;
    let failed: Vec<_> = responses
        .iter()
        .zip(&updates)
        .filter(|((status, _), _)| *status != 200)
        .collect();
    assert!(failed.is_empty(), "updates that failed: {failed:?}");
    for ((_, body), (field, value)) in responses.iter().zip(&updates) {
        assert_eq!(
            &body["customer"][*field], value,
            "the answer to {field}={value}"
        );
    }

    // Every field holds one of the values sent for it: a field whose updates all got lost
    // would still be null.
    let (status, now) = app.get(&path).await;
    assert_eq!(status, 200);
    let mut sent: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for (field, value) in &updates {
        sent.entry(field).or_default().push(value);
    }
    for (field, values) in &sent {
        let held = &now["customer"][*field];
        assert!(
            values.iter().any(|v| held == *v),
            "{field} is {held}, none of {values:?}"
        );
    }
    assert_eq!(now["customer"]["email"], "busy@example.com");

    // And every update is in the log: one create and twenty detail changes, in sequence.
    let sequences: Vec<(i64, String)> = sqlx::query_as(
        "SELECT sequence, event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .expect("events");
    assert_eq!(sequences.len(), 21, "{sequences:?}");
    assert_eq!(sequences[0].1, "CustomerCreated");
    assert!(sequences[1..]
        .iter()
        .all(|(_, event_type)| event_type == "CustomerDetailsUpdated"));
    let numbers: Vec<i64> = sequences.iter().map(|(s, _)| *s).collect();
    let first = numbers[0];
    assert_eq!(numbers, (first..first + 21).collect::<Vec<_>>());
}

#[tokio::test]
async fn eight_concurrent_updates_of_eight_different_fields_all_land() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(json!({"email": "fields@example.com"}))
        .await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());
    let responses = join_all(
        FIELDS
            .iter()
            .enumerate()
            .map(|(i, field)| app.post(&path, json!({ *field: field_value(field, i) }))),
    )
    .await;
    for (status, body) in &responses {
        assert_eq!(*status, 200, "{body}");
    }
    let (_, now) = app.get(&path).await;
    for (i, field) in FIELDS.iter().enumerate() {
        assert_eq!(
            now["customer"][*field],
            field_value(field, i).as_str(),
            "{field} was lost: {now}"
        );
    }
}

#[tokio::test]
async fn concurrent_updates_to_one_email_let_exactly_one_customer_take_it() {
    let app = TestApp::spawn().await;
    let mut paths = Vec::new();
    for i in 0..10 {
        let customer = app
            .create_customer(json!({"email": format!("c{i}@example.com")}))
            .await;
        paths.push(format!(
            "/v1/customers/{}",
            customer["id"].as_str().unwrap()
        ));
    }
    let responses = join_all(
        paths
            .iter()
            .map(|path| app.post(path, json!({"email": "Wanted@example.com"}))),
    )
    .await;
    let ok = responses.iter().filter(|(s, _)| *s == 200).count();
    let conflicts = responses
        .iter()
        .filter(|(status, body)| {
            *status == 409
                && body["error"]
                    == "Another customer with this email already exists. Use dangerouslyAllowSameEmailForDifferentCustomers to allow."
        })
        .count();
    assert_eq!((ok, conflicts), (1, 9), "{responses:?}");
    let (_, list) = app.get("/v1/customers?email=wanted@example.com").await;
    assert_eq!(list["customers"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn concurrent_updates_through_two_instances_all_land() {
    // Two services on one database: no in-process turn-taking between them, only the log's
    // (aggregate, sequence) key and the retries.
    let mut first = TestApp::spawn().await;
    let database = first.take_database().expect("database");
    let second = TestApp::spawn_on(&database.url).await;
    let key = first.test_key().to_owned();
    let customer = first
        .create_customer(json!({"email": "shared@example.com"}))
        .await;
    let path = format!("/v1/customers/{}", customer["id"].as_str().unwrap());

    let updates: Vec<(&str, String)> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, field)| (*field, field_value(field, i)))
        .collect();
    let responses = join_all(updates.iter().enumerate().map(|(i, (field, value))| {
        let app = if i % 2 == 0 { &first } else { &second };
        app.post_as(&key, &path, json!({ *field: value }))
    }))
    .await;
    let failed: Vec<_> = responses.iter().filter(|(s, _)| *s != 200).collect();
    assert!(failed.is_empty(), "updates that failed: {failed:?}");

    let (_, now) = second.get_as(&key, &path).await;
    for (field, value) in &updates {
        assert_eq!(&now["customer"][*field], value, "{field} was lost");
    }
    first.stop().await;
    drop(second);
    drop(database);
}
