//! `billstream projections status` and `rebuild` on the real binary.

mod common;

use common::{billstream, FreshDatabase};

fn run(database: &FreshDatabase, args: &[&str]) -> (bool, String, String) {
    let output = billstream()
        .args(args)
        .env("DATABASE_URL", database.url())
        .output()
        .expect("run billstream");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn status_lists_every_projection_with_its_mode_checkpoint_and_lag() {
    let database = FreshDatabase::new();
    let (ok, stdout, stderr) = run(&database, &["projections", "status"]);
    assert!(ok, "{stderr}");
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        vec!["projection", "mode", "rows", "checkpoint", "lag", "owner"]
    );
    let names: Vec<&str> = lines[1..].iter().map(|l| l[0]).collect();
    assert_eq!(
        names,
        vec![
            "customer_list",
            "plan_list",
            "subscription_list",
            "payment_method_list",
            "organization_list",
            "invoice_list",
            "document_numbers",
            "payment_list",
            "payment_totals",
            "credit_balances",
            "top_up_list",
            "portal_overview"
        ]
    );
    // Nothing is written yet, and no service runs: the catch-up projection has no owner.
    let portal = lines.last().unwrap();
    assert_eq!(portal[1..], ["catch-up", "0", "0", "0", "none"]);
}

#[test]
fn rebuild_names_each_projection_it_rebuilt_and_refuses_an_unknown_one() {
    let database = FreshDatabase::new();
    let (ok, stdout, stderr) = run(&database, &["projections", "rebuild"]);
    assert!(ok, "{stderr}");
    for name in [
        "customer_list",
        "portal_overview",
        "plan_list",
        "subscription_list",
        "payment_method_list",
        "organization_list",
    ] {
        assert!(
            stdout.contains(name) || stderr.contains(name),
            "{name} missing from: {stdout} {stderr}"
        );
    }

    let (ok, _, stderr) = run(&database, &["projections", "rebuild", "nope"]);
    assert!(!ok);
    assert!(
        stderr.contains("no projection is named \"nope\""),
        "{stderr}"
    );
}

#[test]
fn scheduler_status_prints_its_owner_and_a_line_per_tenant() {
    let database = FreshDatabase::new();
    let output = billstream()
        .args(["scheduler", "status"])
        .env("DATABASE_URL", database.url())
        .output()
        .expect("run billstream");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "scheduler: no instance owns it", "{stdout}");
    assert!(lines[1].starts_with("tenant"), "{stdout}");
    assert_eq!(lines.len(), 2, "no tenant bills yet: {stdout}");
}
