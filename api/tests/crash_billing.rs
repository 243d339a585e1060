//! kill -9 in the middle of billing: a test-mode tenant with 200 subscriptions (some charged to
//! cards that decline) has its test clock advanced by a month at a time, and the service is
//! killed part way through each advance, at a different point each round, then restarted
//! (its scheduler and flow resumer pick up what was left while the next advance runs). After
//! a last advance that runs to its end: each subscription was billed exactly once per
//! period, no invoice was charged twice, each card was charged as it should have been,
//! document numbers have no gap, and each billing read model equals its rebuild from the log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{billstream, free_port, request, FreshDatabase};
use projections::testing::sqlx::{self, PgPool};
use serde_json::{json, Value};

const SUBSCRIPTIONS: usize = 200;
/// Events the log gains in an advance before the service is killed, round by round: right at
/// the start, about half way, near the end (an advance of a month writes ~1500).
const KILL_AFTER_EVENTS: [i64; 3] = [25, 600, 1100];
/// How far each advance moves the clock.
const ADVANCE_DAYS: i64 = 33;
/// The last advance: past the last renewal's retries and grace.
const LAST_ADVANCE_DAYS: i64 = 20;

const BILLING_READ_MODELS: [&str; 8] = [
    "plan_list",
    "subscription_list",
    "payment_method_list",
    "invoice_list",
    "document_numbers",
    "payment_list",
    "payment_totals",
    "portal_overview",
];

/// A running `billstream serve`, killed (-9) when dropped: also when the test fails half way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(database: &FreshDatabase, port: u16) -> Server {
    let server = billstream()
        .env("DATABASE_URL", database.url())
        .env("BILLSTREAM_ADDR", format!("127.0.0.1:{port}"))
        .env("BILLSTREAM_DB_POOL", "8")
        .env_remove("BILLSTREAM_DIE_AFTER")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn billstream");
    let server = Server(server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while request(port, "GET", "/ready", "", "").map(|(s, _)| s) != Some(200) {
        assert!(Instant::now() < deadline, "the service never became ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn kill(mut server: Server) {
    server.0.kill().expect("kill -9");
    server.0.wait().expect("wait");
}

/// [`request`] that waits up to a minute for its answer: an advance takes seconds.
fn slow_request(
    port: u16,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_owned()))
}

/// A request that must be answered `expected`; its body as JSON.
fn json(port: u16, method: &str, path: &str, key: &str, body: Value, expected: u16) -> Value {
    let sent = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, answer) = request(port, method, path, key, &sent)
        .unwrap_or_else(|| panic!("{method} {path}: no answer"));
    assert_eq!(status, expected, "{method} {path} {body}: {answer}");
    serde_json::from_str(&answer).expect("JSON")
}

/// The database, read from the test.
struct Db {
    runtime: tokio::runtime::Runtime,
    pool: PgPool,
}

impl Db {
    fn new(database: &FreshDatabase) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pool = runtime
            .block_on(PgPool::connect(&database.url()))
            .expect("connect");
        Self { runtime, pool }
    }

    fn scalar(&self, sql: &str) -> i64 {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_one(&self.pool))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn texts(&self, sql: &str) -> Vec<String> {
        self.runtime
            .block_on(sqlx::query_scalar(sql).fetch_all(&self.pool))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Every row of `table`, as JSON text, in a stable order.
    fn rows(&self, table: &str) -> Vec<String> {
        self.texts(&format!(
            "SELECT to_jsonb(t)::text FROM {table} t ORDER BY to_jsonb(t)::text"
        ))
    }

    fn portal_overview_lag(&self) -> i64 {
        self.runtime
            .block_on(projections::status::status(&self.pool))
            .expect("status")
            .into_iter()
            .find(|s| s.name == "portal_overview")
            .expect("portal_overview")
            .lag
    }
}

/// The card customer `n` pays with: most pay, one in five is declined, one in ten has
/// insufficient funds.
fn card_number(n: usize) -> &'static str {
    match n % 10 {
        3 | 8 => "4000000000000341",
        6 => "4000000000009995",
        _ => "4242424242424242",
    }
}

/// Customer `n`, its card and its subscription, over HTTP.
fn subscribe(port: u16, key: &str, plans: &[String], n: usize) {
    let external = format!("crash_{n}");
    let customer = json(
        port,
        "POST",
        "/v1/customers",
        key,
        json!({"email": format!("{external}@example.com"), "name": format!("Customer {n}"),
            "externalCustomerId": external}),
        201,
    );
    let customer = customer["customer"]["id"].as_str().unwrap().to_owned();
    let intent = json(
        port,
        "POST",
        "/v1/customers/portal/create-setup-intent",
        key,
        json!({"externalCustomerId": external}),
        200,
    );
    let confirm_url = intent["sandbox"]["confirmUrl"].as_str().unwrap();
    let path = &confirm_url[confirm_url.find("/v1/").unwrap()..];
    let card = json(
        port,
        "POST",
        path,
        key,
        json!({"cardNumber": card_number(n), "expMonth": 12, "expYear": 2030}),
        201,
    );
    let card = card["paymentMethod"]["id"].as_str().unwrap();
    let mut body = json!({"customerId": customer, "planId": plans[n % plans.len()],
        "paymentMethodId": card});
    if n % plans.len() == 1 {
        body["quantity"] = json!(1 + n % 4);
    }
    json(port, "POST", "/v1/subscriptions", key, body, 201);
}

/// The tenant's test clock.
fn clock(port: u16, key: &str) -> chrono::DateTime<chrono::Utc> {
    let clock = json(port, "GET", "/v1/test-clock", key, Value::Null, 200);
    chrono::DateTime::parse_from_rfc3339(clock["testClock"]["now"].as_str().unwrap())
        .expect("ISO 8601")
        .with_timezone(&chrono::Utc)
}

fn iso(instant: chrono::DateTime<chrono::Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Waits until the restarted service has finished what the crashes left: no flow unfinished,
/// no charge pending, nothing overdue by the tenant's clock, the portal overview caught up.
fn wait_until_settled(db: &Db, tenant: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let flows = db.scalar("SELECT count(*) FROM flow_runs WHERE finished_at IS NULL");
        let pending = db.scalar("SELECT count(*) FROM payment_list WHERE status = 'pending'");
        let overdue = db.scalar(&format!(
            "SELECT count(*) FROM subscription_list s \
             WHERE s.status <> 'canceled' AND least(s.current_period_end, \
                   s.grace_period_ends_at) <= now() + coalesce((SELECT offset_us \
                   FROM test_clocks WHERE tenant = '{tenant}'), 0) * interval '1 microsecond'"
        ));
        let lag = db.portal_overview_lag();
        if flows == 0 && pending == 0 && overdue == 0 && lag == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not settled after 30 s: {flows} flows unfinished, {pending} charges pending, \
             {overdue} subscriptions overdue, portal_overview {lag} events behind"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where billing went wrong: each finding with the rows that show it.
fn billing_violations(db: &Db) -> Vec<String> {
    let mut violations = Vec::new();
    let mut check = |what: &str, found: Vec<String>| {
        if !found.is_empty() {
            violations.push(format!("{what} ({}):\n{}", found.len(), found.join("\n")));
        }
    };
    // Every period the log began is invoiced once, and nothing else is: the periods are the
    // start's (unless it began with a trial) and each renewal's.
    check(
        "periods not invoiced exactly once (subscription, period start, periods begun, invoices)",
        db.texts(
            "WITH periods AS ( \
                SELECT aggregate_id AS subscription_id, \
                       (payload -> 'SubscriptionStarted' ->> 'currentPeriodStart')::timestamptz \
                       AS period_start \
                FROM events WHERE aggregate_type = 'Subscription' \
                  AND event_type = 'SubscriptionStarted' \
                  AND payload -> 'SubscriptionStarted' ->> 'trialEndsAt' IS NULL \
                UNION ALL \
                SELECT aggregate_id, \
                       (payload -> 'SubscriptionRenewed' ->> 'periodStart')::timestamptz \
                FROM events WHERE aggregate_type = 'Subscription' \
                  AND event_type = 'SubscriptionRenewed'), \
             begun AS (SELECT subscription_id, period_start, count(*) AS n FROM periods \
                       GROUP BY 1, 2), \
             drafted AS (SELECT payload -> 'InvoiceDrafted' ->> 'subscriptionId' \
                                AS subscription_id, \
                                (payload -> 'InvoiceDrafted' ->> 'periodStart')::timestamptz \
                                AS period_start, count(*) AS n \
                         FROM events WHERE aggregate_type = 'Invoice' \
                           AND event_type = 'InvoiceDrafted' \
                           AND payload -> 'InvoiceDrafted' ->> 'documentType' = 'standard' \
                           AND payload -> 'InvoiceDrafted' ->> 'subscriptionId' IS NOT NULL \
                         GROUP BY 1, 2) \
             SELECT format('%s %s: %s, %s', subscription_id, period_start, \
                           coalesce(b.n, 0), coalesce(d.n, 0)) \
             FROM begun b FULL JOIN drafted d USING (subscription_id, period_start) \
             WHERE b.n IS DISTINCT FROM 1 OR d.n IS DISTINCT FROM 1 \
             ORDER BY 1",
        ),
    );
    check(
        "invoice_list: a (subscription, period) with two invoices",
        db.texts(
            "SELECT format('%s %s: %s', subscription_id, period_start, count(*)) \
             FROM invoice_list WHERE subscription_id IS NOT NULL AND document_type = 'standard' \
             GROUP BY subscription_id, period_start HAVING count(*) > 1",
        ),
    );
    check(
        "invoices with more than one succeeded charge, or charged beyond their total",
        db.texts(
            "SELECT format('%s: %s succeeded charges (%s), %s cents of %s', p.invoice_id, \
                    count(*), string_agg(p.id, ' '), sum(p.amount_cents), \
                    max(i.total_amount_cents)) \
             FROM payment_list p JOIN invoice_list i ON i.id = p.invoice_id \
             WHERE p.kind = 'charge' AND p.status = 'succeeded' GROUP BY p.invoice_id \
             HAVING count(*) > 1 OR sum(p.amount_cents) > max(i.total_amount_cents)",
        ),
    );
    check(
        "invoices paid beyond their total",
        db.texts(
            "SELECT format('%s: paid %s of %s', id, amount_paid_cents, total_amount_cents) \
             FROM invoice_list WHERE amount_paid_cents > greatest(total_amount_cents, 0)",
        ),
    );
    // A card that pays: the subscription is active, each of its invoices paid by one charge,
    // no charge failed.
    check(
        "subscriptions on a good card not active and paid up (id, status, invoices, paid, \
         charges succeeded, failed)",
        db.texts(
            "SELECT format('%s %s: %s, %s, %s, %s', s.id, s.status, \
                    (SELECT count(*) FROM invoice_list i WHERE i.subscription_id = s.id), \
                    (SELECT count(*) FROM invoice_list i WHERE i.subscription_id = s.id \
                       AND i.status = 'paid'), \
                    (SELECT count(*) FROM payment_list p JOIN invoice_list i \
                       ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                       AND p.status = 'succeeded'), \
                    (SELECT count(*) FROM payment_list p JOIN invoice_list i \
                       ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                       AND p.status <> 'succeeded')) \
             FROM subscription_list s JOIN payment_method_list m ON m.id = s.payment_method_id \
             WHERE m.card_last_four NOT IN ('0341', '9995') AND (s.status <> 'active' \
                OR EXISTS (SELECT 1 FROM invoice_list i WHERE i.subscription_id = s.id \
                           AND i.status <> 'paid') \
                OR EXISTS (SELECT 1 FROM payment_list p JOIN invoice_list i \
                           ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                           AND p.status <> 'succeeded') \
                OR (SELECT count(*) FROM payment_list p JOIN invoice_list i \
                    ON i.id = p.invoice_id WHERE i.subscription_id = s.id) \
                   <> (SELECT count(*) FROM invoice_list i WHERE i.subscription_id = s.id))",
        ),
    );
    // A card that declines: charged once and retried three times (1, 3 and 5 days on), then
    // the grace ended: canceled, its one invoice uncollectible.
    check(
        "subscriptions on a declining card not canceled after four failed charges (id, \
         status, invoices, uncollectible, charges failed, succeeded)",
        db.texts(
            "SELECT format('%s %s: %s, %s, %s, %s', s.id, s.status, \
                    (SELECT count(*) FROM invoice_list i WHERE i.subscription_id = s.id), \
                    (SELECT count(*) FROM invoice_list i WHERE i.subscription_id = s.id \
                       AND i.status = 'uncollectible'), \
                    (SELECT count(*) FROM payment_list p JOIN invoice_list i \
                       ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                       AND p.status = 'failed'), \
                    (SELECT count(*) FROM payment_list p JOIN invoice_list i \
                       ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                       AND p.status <> 'failed')) \
             FROM subscription_list s JOIN payment_method_list m ON m.id = s.payment_method_id \
             WHERE m.card_last_four IN ('0341', '9995') AND (s.status <> 'canceled' \
                OR (SELECT count(*) FROM invoice_list i WHERE i.subscription_id = s.id) <> 1 \
                OR EXISTS (SELECT 1 FROM invoice_list i WHERE i.subscription_id = s.id \
                           AND i.status <> 'uncollectible') \
                OR (SELECT count(*) FROM payment_list p JOIN invoice_list i \
                    ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                    AND p.status = 'failed') <> 4 \
                OR EXISTS (SELECT 1 FROM payment_list p JOIN invoice_list i \
                           ON i.id = p.invoice_id WHERE i.subscription_id = s.id \
                           AND p.status <> 'failed'))",
        ),
    );
    // Document numbers: each series 1..n, each number once, the same as the invoices'.
    check(
        "document number series with gaps",
        db.texts(
            "SELECT format('%s %s: count %s, min %s, max %s', tenant, series, count(*), \
                    min(seq), max(seq)) FROM document_numbers GROUP BY tenant, series \
             HAVING count(*) <> max(seq) OR min(seq) <> 1 \
                 OR count(DISTINCT number) <> count(*)",
        ),
    );
    check(
        "invoice numbers and document_numbers differ",
        db.texts(
            "SELECT format('%s: %s, document_numbers %s', coalesce(i.id, d.invoice_id), \
                    i.number, d.number) \
             FROM invoice_list i FULL JOIN document_numbers d ON d.invoice_id = i.id \
             WHERE i.number IS DISTINCT FROM d.number",
        ),
    );
    violations
}

#[test]
fn kill_9_during_test_clock_advances_bills_each_period_exactly_once() {
    let started = Instant::now();
    let database = FreshDatabase::new();
    let output = billstream()
        .args(["merchants", "create", "--name", "Crash billing"])
        .env("DATABASE_URL", database.url())
        .output()
        .expect("merchants create");
    assert!(output.status.success());
    let merchant: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let key = merchant["testSecretKey"].as_str().unwrap().to_owned();
    let tenant = format!("{}:test", merchant["merchantId"].as_str().unwrap());

    let port = free_port();
    let mut server = serve(&database, port);
    let plans: Vec<String> = [
        json!({"name": "Flat", "currency": "USD", "interval": "month",
            "pricingData": {"components": [{"type": "flat", "name": "Flat", "amountCents": 2900}]}}),
        json!({"name": "Seats", "currency": "USD", "interval": "month",
            "pricingData": {"components": [
                {"type": "per_seat", "name": "Seats", "unitAmountCents": 1000}]}}),
        json!({"name": "Trial", "currency": "EUR", "interval": "month", "trialDays": 14,
            "pricingData": {"components": [{"type": "flat", "name": "Trial", "amountCents": 900}]}}),
    ]
    .into_iter()
    .map(|plan| {
        let plan = json(port, "POST", "/v1/plans", &key, plan, 201);
        plan["plan"]["id"].as_str().unwrap().to_owned()
    })
    .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let setup: Vec<_> = (0..8)
        .map(|_| {
            let (key, plans, next) = (key.clone(), plans.clone(), next.clone());
            std::thread::spawn(move || loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= SUBSCRIPTIONS {
                    break;
                }
                subscribe(port, &key, &plans, n);
            })
        })
        .collect();
    for thread in setup {
        thread.join().expect("setup");
    }
    println!("{SUBSCRIPTIONS} subscriptions in {:?}", started.elapsed());

    let db = Db::new(&database);
    let mut port = port;
    // Each advance goes a month past the last one's target, wherever the kill left the clock.
    let mut to = clock(port, &key);
    for (round, kill_after) in KILL_AFTER_EVENTS.into_iter().enumerate() {
        to += chrono::Duration::days(ADVANCE_DAYS);
        let to = iso(to);
        let events = db.scalar("SELECT count(*) FROM events");
        let advancing = {
            let key = key.clone();
            let body = json!({ "to": to }).to_string();
            std::thread::spawn(move || {
                slow_request(port, "POST", "/v1/test-clock/advance", &key, &body)
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while db.scalar("SELECT count(*) FROM events") < events + kill_after
            && !advancing.is_finished()
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: the advance stalled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        kill(server);
        let written = db.scalar("SELECT count(*) FROM events") - events;
        let answer = advancing.join().expect("advance");
        println!(
            "round {round}: killed {written} events into an advance to {to} ({:?}) at {:?}",
            answer.as_ref().map(|(status, _)| status),
            started.elapsed()
        );
        assert_eq!(
            answer, None,
            "round {round}: the advance finished before the kill ({written} events): \
             kill sooner"
        );
        port = free_port();
        server = serve(&database, port);
    }

    // The last advance runs to its end; the restarted service finishes what is left.
    let to = iso(to + chrono::Duration::days(LAST_ADVANCE_DAYS));
    let (status, answer) = slow_request(
        port,
        "POST",
        "/v1/test-clock/advance",
        &key,
        &json!({ "to": to }).to_string(),
    )
    .expect("the last advance answers");
    assert_eq!(status, 200, "{answer}");
    wait_until_settled(&db, &tenant);
    println!("settled at {:?}", started.elapsed());
    kill(server);

    let mut failures = billing_violations(&db);
    // Three months and more went by: each subscription on a good card renewed three times.
    let renewed = db.scalar("SELECT count(*) FROM events WHERE event_type = 'SubscriptionRenewed'");
    let paying = (0..SUBSCRIPTIONS)
        .filter(|n| card_number(*n).starts_with("4242"))
        .count() as i64;
    assert!(
        renewed >= 3 * paying,
        "only {renewed} renewals of {paying} paying subscriptions: the advances did not bill \
         three months"
    );

    // Each billing read model equals its rebuild from the log.
    for name in BILLING_READ_MODELS {
        let live = db.rows(name);
        assert!(!live.is_empty(), "{name} is empty");
        let rebuilt = billstream()
            .args(["projections", "rebuild", name])
            .env("DATABASE_URL", database.url())
            .output()
            .expect("rebuild");
        assert!(
            rebuilt.status.success(),
            "rebuild {name}: {}",
            String::from_utf8_lossy(&rebuilt.stderr)
        );
        let after = db.rows(name);
        if after != live {
            let differ: Vec<String> = live
                .iter()
                .filter(|row| !after.contains(row))
                .map(|row| format!("live:    {row}"))
                .chain(
                    after
                        .iter()
                        .filter(|row| !live.contains(row))
                        .map(|row| format!("rebuilt: {row}")),
                )
                .collect();
            failures.push(format!(
                "{name} differs from its rebuild ({} live rows, {} rebuilt):\n{}",
                live.len(),
                after.len(),
                differ.join("\n")
            ));
        }
    }
    println!("done in {:?}", started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
