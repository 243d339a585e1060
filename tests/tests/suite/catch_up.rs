//! Catch-up projections: `portal_overview` is fed after the append from its checkpoint, yet a
//! portal read shows every write acknowledged before it; the reader never skips an event of a
//! transaction still open; one instance feeds it at a time and another takes over; a rebuild
//! equals the live table.

use std::time::{Duration, Instant};

use billstream_tests::TestApp;
use chrono::Utc;
use domain::customer::{CustomerDetails, CustomerEvent};
use domain::email::Email;
use domain::id::CustomerId;
use domain::tenant::{Mode, Tenant};
use projections::catch_up;
use projections::read_models::portal_overview;
use serde_json::{json, Value};
use sqlx::PgPool;

const NOT_FOUND: &str = "Customer not found or access denied";

fn overview_path(external_id: &str) -> String {
    format!("/v1/customers/portal/overview?externalCustomerId={external_id}")
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lock_holders(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND classid::text::bigint = (hashtext($1)::bigint >> 32) & 4294967295 \
           AND objid::text::bigint = hashtext($1)::bigint & 4294967295",
    )
    .bind(format!("billstream.catch_up.{}", portal_overview::TABLE))
    .fetch_one(pool)
    .await
    .expect("count lock holders")
}

/// Waits until the live runner has applied every event of the log. A portal read no longer
/// implies it: when a transaction anywhere on the server (another test's) holds the runner
/// back, the read answers from the log instead of waiting.
async fn caught_up(pool: &PgPool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while catch_up::standing(pool, portal_overview::TABLE)
        .await
        .unwrap()
        .1
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "portal_overview never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The live table, row by row, in a comparable form.
async fn portal_rows(pool: &PgPool) -> Vec<(String, String, Option<String>, Value)> {
    sqlx::query_as(
        "SELECT customer_id, tenant, external_customer_id, document FROM portal_overview \
         ORDER BY customer_id",
    )
    .fetch_all(pool)
    .await
    .expect("read portal_overview")
}

#[tokio::test]
async fn the_overview_shows_every_acknowledged_write_at_once() {
    let app = TestApp::spawn().await;
    let customer = app
        .create_customer(
            json!({"email": "jane@example.com", "name": "Jane", "externalCustomerId": "user_1"}),
        )
        .await;
    let id = customer["id"].as_str().unwrap().to_owned();

    let (status, body) = app.get(&overview_path("user_1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"portal": {
            "customer": {"id": id, "name": "Jane", "email": "jane@example.com"},
            "subscription": null,
            "paymentMethods": [],
            "invoices": [],
            "payments": [],
        }})
    );

    let (status, _) = app
        .post(
            &format!("/v1/customers/{id}"),
            json!({"name": "Jane Smith", "email": "jane.smith@example.com"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = app.get(&overview_path("user_1")).await;
    assert_eq!(
        body["portal"]["customer"],
        json!({"id": id, "name": "Jane Smith", "email": "jane.smith@example.com"})
    );

    // A new external id moves the customer's portal to it.
    let (status, _) = app
        .post(
            &format!("/v1/customers/{id}"),
            json!({"externalCustomerId": "user_2"}),
        )
        .await;
    assert_eq!(status, 200);
    billstream_tests::assert_error(&app.get(&overview_path("user_1")).await, 404, NOT_FOUND);
    let (status, _) = app.get(&overview_path("user_2")).await;
    assert_eq!(status, 200);

    // Another merchant's key finds nothing under the same external id.
    let other = app.other_merchant().await;
    billstream_tests::assert_error(
        &app.get_as(&other.test_secret_key, &overview_path("user_2"))
            .await,
        404,
        NOT_FOUND,
    );
    // Nor does the live mode of the same merchant.
    billstream_tests::assert_error(
        &app.get_as(app.live_key(), &overview_path("user_2")).await,
        404,
        NOT_FOUND,
    );

    let (status, _) = app.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(status, 200);
    billstream_tests::assert_error(&app.get(&overview_path("user_2")).await, 404, NOT_FOUND);

    billstream_tests::assert_error(
        &app.get("/v1/customers/portal/overview").await,
        400,
        "externalCustomerId is required",
    );
}

/// A transaction that took its position first but commits last: the projection must not move
/// past it while it is open, or it would never apply it.
#[tokio::test]
async fn the_projection_waits_for_a_transaction_still_open_rather_than_skip_it() {
    let app = TestApp::spawn().await;
    let tenant = Tenant::new(app.merchant.merchant_id.clone(), Mode::Test);
    let held_id = CustomerId::generate();
    let held_event = CustomerEvent::CustomerCreated {
        id: held_id.clone(),
        tenant: tenant.clone(),
        email: Email::parse("held@example.com").unwrap(),
        details: CustomerDetails {
            external_customer_id: Some("held".into()),
            ..CustomerDetails::default()
        },
        at: Utc::now(),
    };
    let mut held = app.pool.begin().await.expect("begin");
    let held_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, tenant) \
         VALUES ('Customer', $1, 1, 'CustomerCreated', '1', $2, '{}', $3) RETURNING position",
    )
    .bind(held_id.as_str())
    .bind(serde_json::to_value(&held_event).unwrap())
    .bind(tenant.key())
    .fetch_one(&mut *held)
    .await
    .expect("insert held event");

    // Meanwhile a customer is created and acknowledged: a higher position, committed.
    let later = app
        .create_customer(json!({"email": "later@example.com", "externalCustomerId": "later"}))
        .await;

    // The runner polls every few milliseconds; give it many chances to skip ahead.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reached: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT position FROM projection_checkpoints WHERE name = $1), 0)",
    )
    .bind(portal_overview::TABLE)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        reached < held_position,
        "checkpoint {reached} moved past the open transaction's {held_position}"
    );
    let applied_later: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM portal_overview WHERE customer_id = $1)")
            .bind(later["id"].as_str().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !applied_later,
        "applied an event behind an open transaction"
    );

    held.commit().await.expect("commit");
    // A read waits until the projection holds every acknowledged write, the held one included.
    let (status, body) = app.get(&overview_path("later")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["portal"]["customer"]["id"], later["id"]);
    caught_up(&app.pool).await;
    let held_document: Value =
        sqlx::query_scalar("SELECT document FROM portal_overview WHERE customer_id = $1")
            .bind(held_id.as_str())
            .fetch_one(&app.pool)
            .await
            .expect("the held customer's overview");
    assert_eq!(held_document["customer"]["email"], "held@example.com");
}

#[tokio::test]
async fn two_instances_feed_the_projection_one_at_a_time_and_the_survivor_takes_over() {
    let mut first = TestApp::spawn().await;
    let database = first.take_database().expect("database");
    wait_until("the first instance owns the projection", async || {
        catch_up::owned(&first.pool, portal_overview::TABLE)
            .await
            .unwrap()
    })
    .await;
    let mut second = TestApp::spawn_on(&database.url).await;

    // Both run; the second waits as a standby.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(lock_holders(&first.pool).await, 1);

    // Writes through either instance reach the one projection, once.
    second
        .create_customer(json!({"email": "a@example.com", "externalCustomerId": "a"}))
        .await;
    first
        .create_customer(json!({"email": "b@example.com", "externalCustomerId": "b"}))
        .await;
    let (status, body) = second.get(&overview_path("a")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = first.get(&overview_path("b")).await;
    assert_eq!(status, 200, "{body}");

    // The owner stops; the standby takes over and feeds what comes next.
    first.stop().await;
    wait_until("the second instance owns the projection", async || {
        catch_up::owned(&second.pool, portal_overview::TABLE)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(lock_holders(&second.pool).await, 1);
    second
        .create_customer(json!({"email": "c@example.com", "externalCustomerId": "c"}))
        .await;
    let (status, body) = second.get(&overview_path("c")).await;
    assert_eq!(status, 200, "{body}");
    caught_up(&second.pool).await;
    let rows = portal_rows(&second.pool).await;
    assert_eq!(rows.len(), 3, "{rows:?}");

    second.stop().await;
    drop(database);
}

struct Quiet;

impl projections::rebuild::Progress for Quiet {
    fn started(&self, _: u64) {}
    fn advanced(&self, _: u64) {}
}

#[tokio::test]
async fn a_rebuilt_overview_equals_the_live_one_and_the_service_reads_on_from_it() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for n in 0..30 {
        let customer = app
            .create_customer(json!({"email": format!("c{n}@example.com"), "name": format!("C {n}"), "externalCustomerId": format!("ext{n}")}))
            .await;
        ids.push(customer["id"].as_str().unwrap().to_owned());
    }
    for id in ids.iter().step_by(3) {
        let (status, _) = app
            .post(&format!("/v1/customers/{id}"), json!({"name": "Renamed"}))
            .await;
        assert_eq!(status, 200);
    }
    for id in ids.iter().skip(1).step_by(5) {
        let (status, _) = app.delete(&format!("/v1/customers/{id}")).await;
        assert_eq!(status, 200);
    }
    // A read waits for the projection to hold everything acknowledged.
    let (status, _) = app.get(&overview_path("ext0")).await;
    assert_eq!(status, 200);
    caught_up(&app.pool).await;
    let live = portal_rows(&app.pool).await;
    assert_eq!(live.len(), 24);

    let report = projections::rebuild::rebuild(&app.pool, portal_overview::TABLE, &Quiet)
        .await
        .expect("rebuild");
    assert_eq!(report.projection, portal_overview::TABLE);
    assert_eq!(portal_rows(&app.pool).await, live);

    let statuses = projections::status::status(&app.pool).await.unwrap();
    let portal = statuses
        .iter()
        .find(|s| s.name == portal_overview::TABLE)
        .expect("portal_overview in status");
    assert_eq!(portal.mode, "catch-up");
    assert_eq!(portal.rows, 24);
    assert_eq!(portal.lag, 0, "{portal:?}");
    assert!(portal.owned);

    // The live runner reads on from the checkpoint the rebuild handed over: no event twice,
    // none lost.
    app.create_customer(json!({"email": "after@example.com", "externalCustomerId": "after"}))
        .await;
    let (status, body) = app.get(&overview_path("after")).await;
    assert_eq!(status, 200, "{body}");
    caught_up(&app.pool).await;
    assert_eq!(portal_rows(&app.pool).await.len(), 25);
}
