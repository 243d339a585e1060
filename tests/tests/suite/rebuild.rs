//! A rebuilt read model equals the live one, row for row, and a rebuild can run while the
//! service takes writes.

use std::sync::{Arc, Mutex};

use billstream_tests::TestApp;
use futures::future::join_all;
use projections::rebuild::{self, Progress};
use serde_json::{json, Value};

struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: u64) {}
    fn advanced(&self, _: u64) {}
}

/// xorshift: enough randomness for a workload, seeded per client.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Self {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Every row of customer_list, as JSON, in id order.
async fn customer_rows(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar("SELECT row_to_json(c)::text FROM customer_list c ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// One client's share of a random workload: creates (emails and external ids drawn from
/// small pools, so some collide), updates of every kind, deletes. Answers the statuses seen.
async fn random_client(app: &TestApp, ids: &Mutex<Vec<String>>, seed: u64, ops: usize) -> Vec<u16> {
    let mut dice = Dice::new(seed);
    let mut statuses = Vec::new();
    for _ in 0..ops {
        let known = ids.lock().unwrap().clone();
        let pick = |dice: &mut Dice| known[dice.below(known.len() as u64) as usize].clone();
        let roll = dice.below(10);
        let (status, body) = if known.is_empty() || roll < 4 {
            let mut body = json!({
                "email": format!("User{}@Example.com", dice.below(400)),
                "name": format!("name {}", dice.below(1000)),
            });
            if dice.below(2) == 0 {
                body["externalCustomerId"] = json!(format!("ext_{}", dice.below(400)));
            }
            app.post("/v1/customers", body).await
        } else if roll < 9 {
            let id = pick(&mut dice);
            let body = match dice.below(5) {
                0 => json!({"email": format!("user{}@example.com", dice.below(400))}),
                1 => json!({
                    "email": format!("shared{}@example.com", dice.below(20)),
                    "dangerouslyAllowSameEmailForDifferentCustomers": true
                }),
                2 => json!({"externalCustomerId": format!("ext_{}", dice.below(400))}),
                3 => json!({"billingCity": null, "taxId": format!("tax {}", dice.below(50))}),
                _ => json!({"name": format!("name {}", dice.below(1000)), "billingCountry": "de"}),
            };
            app.post(&format!("/v1/customers/{id}"), body).await
        } else {
            let id = pick(&mut dice);
            app.delete(&format!("/v1/customers/{id}")).await
        };
        if status == 201 {
            ids.lock()
                .unwrap()
                .push(body["customer"]["id"].as_str().unwrap().to_owned());
        }
        statuses.push(status);
    }
    statuses
}

fn assert_no_server_errors(statuses: &[u16]) {
    let unexpected: Vec<_> = statuses
        .iter()
        .filter(|s| ![200, 201, 404, 409].contains(*s))
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
}

#[tokio::test]
async fn after_a_random_concurrent_workload_a_rebuild_equals_the_live_read_model() {
    let app = TestApp::spawn().await;
    let ids = Arc::new(Mutex::new(Vec::new()));
    let statuses: Vec<u16> =
        join_all((0..16).map(|client| random_client(&app, &ids, client + 1, 150)))
            .await
            .into_iter()
            .flatten()
            .collect();
    assert_no_server_errors(&statuses);
    assert!(
        statuses.iter().filter(|s| **s == 409).count() > 0,
        "the workload made collisions"
    );
    assert!(ids.lock().unwrap().len() > 100);

    let live = customer_rows(&app).await;
    let report = rebuild::rebuild(&app.pool, "customer_list", &Quiet)
        .await
        .unwrap();
    // Transactions of other databases on the server can hold the settled line back, so some
    // events may be caught up under the lock rather than filled: together they are all.
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((report.events + report.caught_up) as i64, events);
    assert_eq!(customer_rows(&app).await, live);

    // The catch-up projection too, once it has applied the whole workload.
    let tenant = format!("{}:test", app.merchant.merchant_id);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while projections::catch_up::behind_for_tenant(&app.pool, "portal_overview", &tenant)
        .await
        .unwrap()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "portal_overview never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let overview_rows = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT row_to_json(p)::text FROM portal_overview p ORDER BY customer_id",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap()
    };
    let live_overviews = overview_rows().await;
    assert!(live_overviews.len() > 50, "{}", live_overviews.len());
    rebuild::rebuild(&app.pool, "portal_overview", &Quiet)
        .await
        .unwrap();
    assert_eq!(overview_rows().await, live_overviews);

    // The swapped-in table still guards uniqueness, with the same refusals.
    let (_, listed) = app.get("/v1/customers?limit=1").await;
    let email = listed["customers"][0]["email"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post("/v1/customers", json!({"email": email.to_uppercase()}))
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (409, json!("A customer with this email already exists"))
    );
}

#[tokio::test]
async fn a_rebuild_while_clients_write_loses_nothing_and_equals_a_fresh_rebuild() {
    let app = TestApp::spawn().await;
    let ids = Arc::new(Mutex::new(Vec::new()));
    // Some history to rebuild first.
    assert_no_server_errors(
        &join_all((0..8).map(|client| random_client(&app, &ids, 100 + client, 60)))
            .await
            .concat(),
    );

    let writers = join_all((0..8).map(|client| random_client(&app, &ids, 200 + client, 60)));
    let rebuilding = rebuild::rebuild(&app.pool, "customer_list", &Quiet);
    let (statuses, report) = tokio::join!(writers, rebuilding);
    assert_no_server_errors(&statuses.concat());
    report.unwrap();

    // Every customer acknowledged as created is in the read model.
    let rows = customer_rows(&app).await;
    for id in ids.lock().unwrap().iter() {
        assert!(
            rows.iter().any(|row| row.contains(id.as_str())),
            "{id} was lost"
        );
    }
    let live: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    rebuild::rebuild(&app.pool, "customer_list", &Quiet)
        .await
        .unwrap();
    let again: Vec<Value> = customer_rows(&app)
        .await
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    assert_eq!(again, live);
}

#[tokio::test]
async fn rebuilding_an_unknown_projection_is_refused() {
    let app = TestApp::spawn().await;
    let error = rebuild::rebuild(&app.pool, "nope", &Quiet)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("customer_list"), "{error}");
}

#[tokio::test]
async fn only_one_rebuild_of_a_projection_runs_at_a_time() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"email": "one@example.com"}))
        .await;
    // Another instance rebuilding holds the projection's advisory lock.
    let mut other = app.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext('billstream.rebuild.customer_list'))")
        .execute(&mut *other)
        .await
        .unwrap();
    let error = rebuild::rebuild(&app.pool, "customer_list", &Quiet)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("being rebuilt"), "{error}");

    sqlx::query("SELECT pg_advisory_unlock(hashtext('billstream.rebuild.customer_list'))")
        .execute(&mut *other)
        .await
        .unwrap();
    rebuild::rebuild(&app.pool, "customer_list", &Quiet)
        .await
        .unwrap();
    // And it let go of the lock when it was done.
    let free: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_lock(hashtext('billstream.rebuild.customer_list'))",
    )
    .fetch_one(&mut *other)
    .await
    .unwrap();
    assert!(free);
}
