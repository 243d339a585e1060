//! The `billstream` binary itself: start-up against a missing database, the CLI, and a
//! graceful stop on SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{billstream, free_port, request, FreshDatabase};

/// The status `GET path` answers with, or `None` when nothing answers.
fn get_status(port: u16, path: &str) -> Option<u16> {
    request(port, "GET", path, "", "").map(|(status, _)| status)
}

#[test]
fn an_unreachable_database_is_one_clear_line_not_a_panic() {
    let output = billstream()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/billstream")
        .output()
        .expect("run billstream");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with(
            "error: cannot reach PostgreSQL at postgres://postgres@127.0.0.1:1/billstream"
        ),
        "{stderr}"
    );
    assert!(
        lines[0].contains("DATABASE_URL"),
        "the line says how to fix it: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn merchants_create_prints_one_json_object_with_both_keys() {
    let database = FreshDatabase::new();
    let output = billstream()
        .args([
            "merchants",
            "create",
            "--name",
            "Acme",
            "--provider",
            "stripe",
            // A Stripe merchant is made with its Stripe account, or not at all.
            "--stripe-secret-key",
            "sk_test_123",
            "--stripe-publishable-key",
            "pk_test_123",
            "--stripe-webhook-secret",
            "whsec_123",
        ])
        .env("DATABASE_URL", database.url())
        .output()
        .expect("run billstream");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let merchant: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(merchant["merchantId"]
        .as_str()
        .unwrap()
        .starts_with("merchant_"));
    assert!(merchant["testSecretKey"]
        .as_str()
        .unwrap()
        .starts_with("sk_test_"));
    assert!(merchant["liveSecretKey"]
        .as_str()
        .unwrap()
        .starts_with("sk_live_"));
}

#[test]
fn serve_creates_its_database_and_stops_gracefully_on_sigterm() {
    let database = FreshDatabase::new();
    let port = free_port();
    let mut child = billstream()
        .env("DATABASE_URL", database.url())
        .env("BILLSTREAM_ADDR", format!("127.0.0.1:{port}"))
        .env("BILLSTREAM_DB_POOL", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn billstream");

    let deadline = Instant::now() + Duration::from_secs(30);
    while get_status(port, "/ready") != Some(200) {
        assert!(Instant::now() < deadline, "the service never became ready");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the service exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get_status(port, "/health"), Some(200));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the service ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert_eq!(
        get_status(port, "/health"),
        None,
        "nothing answers after the stop"
    );
}

#[test]
fn merchants_create_takes_the_merchants_own_number_prefixes_and_refuses_bad_ones() {
    let database = FreshDatabase::new();
    let create = |prefixes: [&str; 3]| {
        billstream()
            .args([
                "merchants",
                "create",
                "--name",
                "Acme",
                "--invoice-prefix",
                prefixes[0],
                "--cancellation-prefix",
                prefixes[1],
                "--credit-note-prefix",
                prefixes[2],
            ])
            .env("DATABASE_URL", database.url())
            .output()
            .expect("run billstream")
    };
    let made = create(["ACME", "ACME-CAN", "ACME-CN"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for bad in [
        ["ACME", "ACME", "CN"],
        ["acme", "CAN", "CN"],
        ["A B", "CAN", "CN"],
    ] {
        let refused = create(bad);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{bad:?}: {stderr}");
        assert!(stderr.contains("prefix"), "{bad:?}: {stderr}");
    }
}
