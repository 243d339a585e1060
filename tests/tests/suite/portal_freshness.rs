//! Portal reads do not hang on others: while a transaction open anywhere on the server holds
//! the portal's catch-up runner back, a read answers at once, from the log, and shows a
//! customer (and its changes) made just before it.

use std::time::{Duration, Instant};

use billstream_tests::{TestApp, TestDatabase};
use serde_json::json;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn a_long_transaction_in_another_database_neither_delays_nor_hides_portal_reads() {
    let app = TestApp::spawn().await;
    // A transaction of another database of the same server, holding a transaction id: until
    // it ends, no event committed after it counts as settled, server-wide.
    let elsewhere = TestDatabase::create().await;
    let mut holder = PgConnection::connect(&elsewhere.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut holder)
        .await
        .unwrap();

    let customer = app
        .create_customer(json!({"email": "held@example.com", "externalCustomerId": "ext_held"}))
        .await;
    let (status, _) = app
        .post(
            &format!("/v1/customers/{}", customer["id"].as_str().unwrap()),
            json!({"name": "Held Back"}),
        )
        .await;
    assert_eq!(status, 200);

    let asked = Instant::now();
    let (status, during) = app
        .get("/v1/customers/portal/overview?externalCustomerId=ext_held")
        .await;
    let took = asked.elapsed();
    assert_eq!(status, 200, "{during}");
    assert!(took < Duration::from_secs(2), "the read took {took:?}");
    assert_eq!(during["portal"]["customer"]["id"], customer["id"]);
    assert_eq!(during["portal"]["customer"]["name"], "Held Back");

    // Once the other transaction ends the runner catches up, and writes what was answered.
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let (status, after) = app
        .get("/v1/customers/portal/overview?externalCustomerId=ext_held")
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, during);
}
