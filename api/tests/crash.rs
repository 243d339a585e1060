//! kill -9 under write load: after a restart no acknowledged write is missing and the read
//! model equals a fresh rebuild of it.

mod common;

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{billstream, free_port, request, FreshDatabase};

fn serve(database: &FreshDatabase, port: u16) -> Child {
    let child = billstream()
        .env("DATABASE_URL", database.url())
        .env("BILLSTREAM_ADDR", format!("127.0.0.1:{port}"))
        .env("BILLSTREAM_DB_POOL", "8")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn billstream");
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/ready", "", "").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "the service never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Every row of `table`, as JSON, in key order.
fn rows(database: &FreshDatabase, table: &str, key: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use projections::testing::sqlx::Connection;
        let mut connection = projections::testing::sqlx::PgConnection::connect(&database.url())
            .await
            .expect("connect");
        projections::testing::sqlx::query_scalar(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY {key}"
        ))
        .fetch_all(&mut connection)
        .await
        .expect("rows")
    })
}

#[test]
fn kill_9_under_write_load_loses_no_acknowledged_customer() {
    let database = FreshDatabase::new();
    let output = billstream()
        .args(["merchants", "create", "--name", "Crash"])
        .env("DATABASE_URL", database.url())
        .output()
        .expect("merchants create");
    assert!(output.status.success());
    let merchant: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let key = merchant["testSecretKey"].as_str().unwrap().to_owned();
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();

    for cycle in 0..3u64 {
        let port = free_port();
        let mut server = serve(&database, port);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..6)
            .map(|writer| {
                let (key, stop, acknowledged) = (key.clone(), stop.clone(), acknowledged.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let email = format!("c{cycle}w{writer}n{n}@example.com");
                        let body = format!(r#"{{"email": "{email}", "name": "n{n}"}}"#);
                        if let Some((201, answer)) =
                            request(port, "POST", "/v1/customers", &key, &body)
                        {
                            let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
                            let id = answer["customer"]["id"].as_str().unwrap().to_owned();
                            acknowledged.lock().unwrap().push((id, email));
                        }
                    }
                })
            })
            .collect();
        // Let writes pile up, then kill the service mid-flight, at a different moment each time.
        std::thread::sleep(Duration::from_millis(400 + 250 * cycle));
        server.kill().expect("kill -9");
        server.wait().expect("wait");
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().expect("writer");
        }
    }

    let port = free_port();
    let mut server = serve(&database, port);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "only {} writes were acknowledged",
        acknowledged.len()
    );
    for (id, email) in &acknowledged {
        let answer = request(port, "GET", &format!("/v1/customers/{id}"), &key, "");
        let (status, body) = answer.expect("the service answers");
        assert_eq!(status, 200, "{id} was acknowledged, then lost: {body}");
        assert!(body.contains(email.as_str()), "{id}: {body}");
    }
    // The catch-up projection applies what the crashes left behind its checkpoint.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lag(&database) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "portal_overview never caught up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill().expect("stop");
    server.wait().expect("wait");

    // Every read model equals one rebuilt from the log.
    for (table, key) in [("customer_list", "id"), ("portal_overview", "customer_id")] {
        let live = rows(&database, table, key);
        let rebuilt = billstream()
            .args(["projections", "rebuild", table])
            .env("DATABASE_URL", database.url())
            .output()
            .expect("rebuild");
        assert!(
            rebuilt.status.success(),
            "{}",
            String::from_utf8_lossy(&rebuilt.stderr)
        );
        assert_eq!(rows(&database, table, key), live, "{table}");
    }
}

/// Events `portal_overview` has not applied yet, as `projections status` counts them.
fn lag(database: &FreshDatabase) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let pool = projections::testing::sqlx::PgPool::connect(&database.url())
            .await
            .expect("connect");
        let statuses = projections::status::status(&pool).await.expect("status");
        pool.close().await;
        statuses
            .into_iter()
            .find(|s| s.name == "portal_overview")
            .expect("portal_overview")
            .lag
    })
}
