//! A real process killed in the middle of a flow: `BILLSTREAM_DIE_AFTER=kind:n` makes
//! `billstream serve` abort (as `kill -9` would: no unwinding, no cleanup) right after the n-th
//! command of a `kind` flow committed. The service restarted finishes the flow on its own, and
//! a keyed request's retry is answered as if the request had happened once.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{billstream, free_port, request, request_with, FreshDatabase};
use serde_json::Value;

fn serve(database: &FreshDatabase, port: u16, die_after: Option<&str>) -> Child {
    let mut command = billstream();
    command
        .env("DATABASE_URL", database.url())
        .env("BILLSTREAM_ADDR", format!("127.0.0.1:{port}"))
        .env("BILLSTREAM_DB_POOL", "8")
        .env_remove("BILLSTREAM_DIE_AFTER")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(plan) = die_after {
        command.env("BILLSTREAM_DIE_AFTER", plan);
    }
    let child = command.spawn().expect("spawn billstream");
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/ready", "", "").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "the service never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A merchant's test secret key.
fn merchant(database: &FreshDatabase) -> String {
    let output = billstream()
        .args(["merchants", "create", "--name", "Crash"])
        .env("DATABASE_URL", database.url())
        .output()
        .expect("merchants create");
    assert!(output.status.success());
    let merchant: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    merchant["testSecretKey"].as_str().unwrap().to_owned()
}

fn json(answer: Option<(u16, String)>, expected: u16) -> Value {
    let (status, body) = answer.expect("the service answers");
    assert_eq!(status, expected, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Waits for the killed process to be gone, and checks it died by its own abort.
fn died(mut server: Child) {
    let status = server.wait().expect("wait");
    assert!(!status.success(), "it was meant to die: {status}");
}

#[test]
fn a_keyed_create_killed_after_its_write_is_answered_once_by_its_retry() {
    let database = FreshDatabase::new();
    let key = merchant(&database);
    let port = free_port();
    let server = serve(&database, port, Some("request:1"));
    let body = r#"{"email": "once@example.com"}"#;
    let keyed = "Idempotency-Key: kill-after-write\r\n";
    let cut = request_with(port, "POST", "/v1/customers", &key, keyed, body);
    assert_eq!(cut, None, "the process died before it answered");
    died(server);

    let port = free_port();
    let mut server = serve(&database, port, None);
    let retry = json(
        request_with(port, "POST", "/v1/customers", &key, keyed, body),
        201,
    );
    let listed = json(
        request(port, "GET", "/v1/customers?limit=10", &key, ""),
        200,
    );
    let customers = listed["customers"].as_array().expect("customers");
    assert_eq!(customers.len(), 1, "made once: {listed}");
    assert_eq!(customers[0]["id"], retry["customer"]["id"]);
    let again = json(
        request_with(port, "POST", "/v1/customers", &key, keyed, body),
        201,
    );
    assert_eq!(again, retry, "replayed");
    server.kill().expect("stop");
    server.wait().expect("wait");
}

#[test]
fn a_cascade_delete_killed_after_its_cancel_is_finished_by_the_restarted_service() {
    let database = FreshDatabase::new();
    let key = merchant(&database);
    let port = free_port();
    let server = serve(&database, port, Some("customer.delete:1"));
    let customer = json(
        request(
            port,
            "POST",
            "/v1/customers",
            &key,
            r#"{"email": "cut@example.com"}"#,
        ),
        201,
    );
    let customer = customer["customer"]["id"].as_str().unwrap().to_owned();
    let plan = r#"{"name": "Pro", "currency": "USD", "pricingData": {"components": []}}"#;
    let plan = json(request(port, "POST", "/v1/plans", &key, plan), 201);
    let start = format!(
        r#"{{"customerId": "{customer}", "planId": "{}"}}"#,
        plan["plan"]["id"].as_str().unwrap()
    );
    let subscription = json(
        request(port, "POST", "/v1/subscriptions", &key, &start),
        201,
    );
    let subscription = subscription["subscription"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/customers/{customer}?cascade=true");
    assert_eq!(request(port, "DELETE", &path, &key, ""), None, "it died");
    died(server);

    // Killed after the cancel, before the delete: nobody asks again, the service finishes it.
    let port = free_port();
    let mut server = serve(&database, port, None);
    let canceled = json(
        request(
            port,
            "GET",
            &format!("/v1/subscriptions/{subscription}"),
            &key,
            "",
        ),
        200,
    );
    assert_eq!(canceled["subscription"]["status"], "canceled", "{canceled}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = request(port, "GET", &format!("/v1/customers/{customer}"), &key, "")
            .expect("the service answers");
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "the delete was never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill().expect("stop");
    server.wait().expect("wait");
}
