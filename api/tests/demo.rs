//! `billstream demo` on a fresh database: it prints a portal link and a secret key, then
//! serves; the link opens the hosted portal page with the demo customer on it, and the key
//! reaches the merchant's API.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{billstream, free_port, request, FreshDatabase};

/// The running demo, killed when dropped: also when the test fails half way.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value printed after `label` on the demo's output.
fn printed(lines: &[String], label: &str) -> String {
    lines
        .iter()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label} in {lines:?}"))
}

#[test]
fn the_demo_prints_a_portal_link_that_opens_its_customers_portal() {
    let database = FreshDatabase::new();
    let port = free_port();
    let mut child = billstream()
        .arg("demo")
        .env("DATABASE_URL", database.url())
        .env("BILLSTREAM_ADDR", format!("127.0.0.1:{port}"))
        .env("BILLSTREAM_DB_POOL", "8")
        .env_remove("BILLSTREAM_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn billstream demo");
    let stdout = child.stdout.take().expect("its output");
    let _demo = Demo(child);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of output");
        let done = line.contains("serving until");
        lines.push(line);
        if done {
            break;
        }
    }
    let link = printed(&lines, "portal");
    let key = printed(&lines, "secret key");
    let path = link
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("a link to this service: {link}"));
    assert!(path.starts_with("/portal?session=ps_"), "{path}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        match request(port, "GET", path, "", "") {
            Some((200, page)) => break page,
            other => {
                assert!(Instant::now() < deadline, "the page never came: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(
        page.contains("Jane Doe") || page.contains("jane@example.com"),
        "{page}"
    );
    assert!(page.contains("4242"), "the demo's card is on the page");

    let (status, customers) =
        request(port, "GET", "/v1/customers", &key, "").expect("the API answers");
    assert_eq!(status, 200, "{customers}");
    assert!(customers.contains("demo_customer"), "{customers}");
}
