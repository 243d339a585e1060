//! A rerunnable benchmark: billstream over HTTP against the same work done as raw SQL on the
//! same PostgreSQL, in one run.
//!
//! ```sh
//! cargo run --release -p billstream-tests --bin bench -- [--seconds 5] [--warmup 2] \
//!     [--clients 32] [--customers 2000] [--rounds 3] [--rebuild-events 1000000]
//! ```
//!
//! It makes a fresh database on `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432`),
//! serves the real app in this process on 127.0.0.1:0 with a pool of `--clients` connections, and
//! runs these phases, each after a CHECKPOINT, with `--warmup` seconds of warm-up and
//! `--seconds` measured, with `--clients` concurrent tasks:
//!
//! 1. raw create: a single-row INSERT (autocommit, its own transaction) into `bench_customers`,
//!    a table shaped like `customer_list`, on a raw pool of `--clients` connections;
//! 2. HTTP create: `POST /v1/customers` with a unique email (1 and 2 alternate `--rounds`
//!    times and are summed);
//! 3. raw get: `SELECT * FROM bench_customers WHERE id = $1` on random ids of `--customers`
//!    pre-filled rows;
//! 4. HTTP get: `GET /v1/customers/{id}` on random ids of `--customers` pre-created customers;
//! 5. long history: 1,000 updates on a customer with 10,000 events against 1,000 on customers
//!    with one, from one client, alternating;
//! 6. renewals (`billing.rs`): `--renewals` subscriptions whose trials end on one day, renewed
//!    by one test-clock advance (invoice, number, PDF digest, sandbox charge each), against the
//!    raw create rate of phase 1: single-row INSERT transactions at `--clients`;
//! 7. invoice PDFs over HTTP: up to 1,000 documents once each (a cold cache: each rendered),
//!    then 100 of them five times (a warm one);
//! 8. credits (`credits.rs`): usage (`POST /v1/usage`, quantity 1) across `--usage-customers`
//!    customers with a grant each, and on one hot customer; usage alternates `--rounds` times
//!    with raw create, and balance reads with raw get, each compared with its raw partner;
//! 9. portal (`portal.rs`): the hosted portal page of `--portal-sessions` customers, p99
//!    against its 50 ms target;
//! 10. live streams (`streams.rs`): `--streams` portal pages open on the instance, its extra
//!     memory for them, and whether a change of each customer reaches its page;
//! 11. rebuild: `customer_list` rebuilt from a log of `--rebuild-events` events, against a raw
//!     scan decoding the same rows into structs.
//!
//! It prints markdown tables (rates, the ratio against its target, latencies) and drops the
//! database. A ratio missing its target is reported as BELOW (or ABOVE) TARGET but is not a
//! failure; any error (a non-2xx answer, a failed query) makes the exit code 1.

mod billing;
mod credits;
mod http1;
mod portal;
mod streams;

use std::future::Future;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billstream::merchants::{create_merchant, Provider};

// The same allocator as the service binary, so both sides of the comparison use it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use billstream_tests::TestDatabase;
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Row};
use tokio::sync::oneshot;

const CREATE_TARGET: f64 = 0.25;

/// `--never-analyze`: no ANALYZE anywhere, so the tables have no statistics, as on a server
/// whose autovacuum is off. The create ratio must not depend on them (the portal's catch-up
/// once seq-scanned without them).
static NEVER_ANALYZE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn analyzing() -> bool {
    !NEVER_ANALYZE.load(std::sync::atomic::Ordering::Relaxed)
}
/// Events in the long customer's history, and what a command on it may cost at most, as a
/// multiple of a command on a new customer.
const LONG_HISTORY: i64 = 10_000;
const LONG_HISTORY_TARGET: f64 = 1.5;
const LONG_HISTORY_OPS: usize = 1000;
/// A rebuild must fold events at least this fraction as fast as a raw scan decodes them.
const REBUILD_TARGET: f64 = 0.3;

struct Quiet;

impl projections::rebuild::Progress for Quiet {
    fn started(&self, _: u64) {}
    fn advanced(&self, _: u64) {}
}
const GET_TARGET: f64 = 0.4;

const USAGE: &str = "\
usage: bench [--seconds N] [--warmup N] [--clients N] [--customers N] [--rounds N] [--never-analyze]
             [--rebuild-events N]

  --seconds N     measured seconds per phase, and per round of create (default 5)
  --warmup N      warm-up seconds before each phase (default 2)
  --clients N     concurrent clients, and the size of both database pools (default 32)
  --customers N   rows / customers pre-created for the get phases (default 2000)
  --rebuild-events N  events in the log for the rebuild phase (default 1000000)
  --rounds N      raw and HTTP create, usage and balance alternate with their raw phases this many times (default 3)
  --renewals N    subscriptions renewed in the renewal phase (default 10000; 0 skips it)
  --usage-customers N  customers of the credits phases (default 1000; 0 skips them)
  --portal-sessions N  customers whose portal pages are read (default 32; 0 skips it)
  --streams N     live portal streams held open in the streams phase (default 1000; 0 skips it)
  --never-analyze no ANALYZE at all: the tables keep no statistics

The PostgreSQL server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432);
a fresh database is made on it and dropped at the end.";

#[derive(Debug, Clone, Copy)]
struct Args {
    seconds: u64,
    warmup: u64,
    clients: usize,
    customers: usize,
    rebuild_events: i64,
    rounds: u32,
    renewals: usize,
    usage_customers: usize,
    portal_sessions: usize,
    streams: usize,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut args = Args {
            seconds: 5,
            warmup: 2,
            clients: 32,
            customers: 2000,
            rebuild_events: 1_000_000,
            rounds: 3,
            renewals: 10_000,
            usage_customers: 1000,
            portal_sessions: 32,
            streams: 1000,
        };
        let mut iter = std::env::args().skip(1);
        while let Some(flag) = iter.next() {
            if flag == "-h" || flag == "--help" {
                return Err(String::new());
            }
            if flag == "--never-analyze" {
                NEVER_ANALYZE.store(true, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = iter.next().ok_or_else(|| format!("{flag} needs a value"))?;
                    (flag, value)
                }
            };
            match name.as_str() {
                "--seconds" => args.seconds = number(&name, &value)?,
                "--warmup" => args.warmup = number(&name, &value)?,
                "--clients" => args.clients = number(&name, &value)?,
                "--customers" => args.customers = number(&name, &value)?,
                "--rebuild-events" => args.rebuild_events = number(&name, &value)?,
                "--rounds" => args.rounds = number(&name, &value)?,
                "--renewals" => args.renewals = number(&name, &value)?,
                "--usage-customers" => args.usage_customers = number(&name, &value)?,
                "--portal-sessions" => args.portal_sessions = number(&name, &value)?,
                "--streams" => args.streams = number(&name, &value)?,
                _ => return Err(format!("unknown argument {name}")),
            }
        }
        if args.seconds == 0 || args.clients == 0 || args.customers == 0 || args.rounds == 0 {
            return Err("--seconds, --clients and --customers must be positive".to_owned());
        }
        Ok(args)
    }
}

fn number<T: FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: not a number: {value}"))
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("bench: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let database = TestDatabase::new();
    let outcome = runtime.block_on(run(args, &database.url));
    // The server and the pools are gone with the runtime; then the database is dropped.
    drop(runtime);
    drop(database);
    match outcome {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("bench: {errors} errors (see above)");
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("bench: {message}");
            ExitCode::from(1)
        }
    }
}

/// Runs the four phases and prints the table; answers the number of errors.
async fn run(args: Args, url: &str) -> Result<u64, String> {
    let clients = args.clients;
    let app_pool = projections::database::connect_and_migrate(url, clients as u32)
        .await
        .map_err(|e| e.to_string())?;
    let merchant = create_merchant(&app_pool, "Bench merchant", Provider::Sandbox)
        .await
        .map_err(|e| format!("create merchant: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(billstream::server::serve(
        listener,
        app_pool.clone(),
        async {
            let _ = stop.await;
        },
    ));

    let raw_pool = raw_pool(url, clients as u32).await?;
    sqlx::query(BENCH_TABLE)
        .execute(&raw_pool)
        .await
        .map_err(|e| format!("create bench table: {e}"))?;

    quiet_autovacuum(&raw_pool).await;
    let environment = environment(&raw_pool, args).await;
    println!("{environment}");
    if !analyzing() {
        println!("statistics: never gathered (--never-analyze)");
    }

    let http = Arc::new(Http {
        connections: http1::Connections::new(addr),
        key: merchant.test_secret_key.clone(),
        tenant: format!("{}:test", merchant.merchant_id),
        merchant_id: merchant.merchant_id.clone(),
        run: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
    });
    let timing = Timing {
        warmup: Duration::from_secs(args.warmup),
        measure: Duration::from_secs(args.seconds),
    };

    // 1. and 2. create, raw and over HTTP, alternating for --rounds rounds: this machine's
    // disk and CPU drift over tens of seconds, and alternation lets both sides share it.
    let raw = RawPhases {
        pool: raw_pool.clone(),
        http: http.clone(),
        ids: Arc::new(Vec::new()),
        clients,
        timing,
    };
    let mut raw_create = Stats::default();
    let mut http_create = Stats::default();
    for round in 1..=args.rounds {
        checkpoint(&raw_pool).await;
        eprintln!("raw create, round {round} ...");
        raw_create = raw_create.merge(raw.create(&format!("raw{round}")).await);
        checkpoint(&raw_pool).await;
        eprintln!("http create, round {round} ...");
        http_create = http_create.merge({
            let http = http.clone();
            drive(clients, timing, move |ctx| {
                let http = http.clone();
                async move {
                    http.create(&ctx.email(&http.run, &format!("http{round}")))
                        .await
                        .map(drop)
                }
            })
            .await
        });
    }

    // What keeping portal_overview current leaves behind after the creates: the events its
    // catch-up had yet to apply when the last round ended, and the time and this process's CPU
    // (the server runs in it) until it had applied them.
    let catch_up_left = catch_up_after(&raw_pool).await;

    // The rows the get phases read: as many on each side.
    eprintln!("pre-creating {} customers and rows ...", args.customers);
    let http_ids: Vec<String> = stream::iter(0..args.customers)
        .map(|i| {
            let http = http.clone();
            async move {
                http.create(&format!("get-{}-{i}@example.com", http.run))
                    .await
            }
        })
        .buffer_unordered(clients)
        .try_collect()
        .await
        .map_err(|e| format!("pre-create customers: {e}"))?;
    let raw_ids: Vec<String> =
        stream::iter(0..args.customers)
            .map(|i| {
                let pool = raw_pool.clone();
                let http = http.clone();
                async move {
                    raw_insert(&pool, &http, &format!("get-{}-{i}@example.com", http.run)).await
                }
            })
            .buffer_unordered(clients)
            .try_collect()
            .await
            .map_err(|e| format!("pre-fill bench table: {e}"))?;
    settle_written_tables(&raw_pool).await;

    // 3. raw get
    checkpoint(&raw_pool).await;
    eprintln!("raw get ...");
    let raw = RawPhases {
        ids: Arc::new(raw_ids),
        ..raw
    };
    let raw_get = raw.get().await;

    // 4. HTTP get
    checkpoint(&raw_pool).await;
    eprintln!("http get ...");
    let http_get = {
        let http = http.clone();
        let ids = Arc::new(http_ids.clone());
        drive(clients, timing, move |ctx| {
            let http = http.clone();
            let ids = ids.clone();
            async move {
                let id = &ids[(ctx.random % ids.len() as u64) as usize];
                http.get(id).await
            }
        })
        .await
    };

    // 5. long history: a command on a customer with LONG_HISTORY events against one on a
    // customer with a single event, one client, alternating so both share the noise.
    eprintln!("long history ...");
    let long_id = http
        .create(&format!("long-{}@example.com", http.run))
        .await
        .map_err(|e| format!("create the long customer: {e}"))?;
    grow_history(&raw_pool, &long_id, &http.tenant).await?;
    let new_ids: Vec<&String> = http_ids.iter().take(LONG_HISTORY_OPS).collect();
    // Warm up: the first command on the long customer replays everything and snapshots it.
    http.update(&long_id, "warm-up").await?;
    let mut long_latencies = Vec::with_capacity(LONG_HISTORY_OPS);
    let mut new_latencies = Vec::with_capacity(LONG_HISTORY_OPS);
    for (i, new_id) in new_ids.iter().enumerate() {
        let t0 = Instant::now();
        http.update(&long_id, &format!("long {i}")).await?;
        long_latencies.push(t0.elapsed());
        let t0 = Instant::now();
        http.update(new_id, &format!("new {i}")).await?;
        new_latencies.push(t0.elapsed());
    }
    let long_mean = mean_millis(&long_latencies);
    let new_mean = mean_millis(&new_latencies);

    // 6. and 7. renewals through the test clock, then the PDFs of the invoices they issued.
    let billing = if args.renewals > 0 {
        checkpoint(&raw_pool).await;
        eprintln!("renewals: setting up {} subscriptions ...", args.renewals);
        let renewals =
            billing::renewals(&app_pool, &http.connections, args.renewals, clients).await?;
        eprintln!("invoice PDFs ...");
        let cold_ids: Vec<String> = renewals.invoice_ids.iter().take(1000).cloned().collect();
        let cold =
            billing::download_pdfs(&http.connections, &renewals.key, &cold_ids, 1, clients).await?;
        let warm_ids: Vec<String> = cold_ids.iter().rev().take(100).cloned().collect();
        let warm =
            billing::download_pdfs(&http.connections, &renewals.key, &warm_ids, 5, clients).await?;
        Some((renewals, cold, warm))
    } else {
        None
    };

    // 8. credits: usage spread and hot, balance reads.
    let credit_stats = if args.usage_customers > 0 {
        let settle = || async {
            settle_tables(&raw_pool, &CREDIT_TABLES).await;
            checkpoint(&raw_pool).await;
        };
        Some(
            credits::measure(
                &http,
                clients,
                timing,
                args.usage_customers,
                args.rounds as usize,
                &raw,
                settle,
            )
            .await?,
        )
    } else {
        None
    };

    // 9. the hosted portal page.
    let portal_stats = if args.portal_sessions > 0 {
        checkpoint(&raw_pool).await;
        Some(portal::measure(&http, clients, timing, args.portal_sessions).await?)
    } else {
        None
    };

    // 10. live streams held open, and a change of each customer told to its page.
    let stream_stats = if args.streams > 0 {
        Some(streams::measure(&http, addr, clients, args.streams).await?)
    } else {
        None
    };

    // The HTTP phases are over. The server goes now: its catch-up projection would otherwise
    // spend the rebuild phase feeding on the events written for it, and share the CPU.
    let (tenant, merchant_id) = (http.tenant.clone(), http.merchant_id.clone());
    drop(http);
    let _ = shutdown.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;

    // 6. rebuild: customer_list from a log of --rebuild-events events, against a raw scan
    // that decodes the same rows into structs.
    eprintln!("rebuild: writing {} events ...", args.rebuild_events);
    grow_log(&raw_pool, &tenant, &merchant_id, args.rebuild_events).await?;
    let log_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Customer'")
            .fetch_one(&raw_pool)
            .await
            .map_err(|e| e.to_string())?;
    eprintln!("rebuild: raw scan ...");
    let t0 = Instant::now();
    let scanned = raw_scan(&raw_pool).await?;
    let raw_rate = scanned as f64 / t0.elapsed().as_secs_f64();
    eprintln!("rebuild: customer_list ...");
    let t0 = Instant::now();
    let report = projections::rebuild::rebuild(&raw_pool, "customer_list", &Quiet)
        .await
        .map_err(|e| format!("rebuild: {e}"))?;
    let rebuilt = report.events + report.caught_up;
    let rebuild_rate = rebuilt as f64 / t0.elapsed().as_secs_f64();

    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_list")
        .fetch_one(&raw_pool)
        .await
        .unwrap_or(-1);
    let inserted: i64 = sqlx::query_scalar("SELECT count(*) FROM bench_customers")
        .fetch_one(&raw_pool)
        .await
        .unwrap_or(-1);

    raw_pool.close().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), app_pool.close()).await;

    println!();
    println!(
        "{} s measured per phase (create: per round, {} rounds) after {} s warm-up, {} clients; rows at the end: \
         customer_list {created}, bench_customers {inserted}",
        args.seconds, args.rounds, args.warmup, clients
    );
    println!();
    println!("| case | billstream ops/s | raw ops/s | ratio | target | p50 billstream / raw | p99 billstream / raw |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "{}",
        row("create", &http_create, &raw_create, CREATE_TARGET)
    );
    println!("{}", row("get", &http_get, &raw_get, GET_TARGET));
    println!();
    let cost = long_mean / new_mean;
    println!(
        "| command (update over HTTP, 1 client, {} each) | mean on a {}-event customer | mean on a 1-event customer | cost ratio | target |",
        new_latencies.len(),
        LONG_HISTORY
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| long history | {long_mean:.2} ms | {new_mean:.2} ms | {cost:.2}{} | at most {LONG_HISTORY_TARGET:.2} |",
        if cost <= LONG_HISTORY_TARGET { "" } else { " ABOVE TARGET" }
    );
    if let Some((renewals, cold, warm)) = &billing {
        println!();
        print_billing(renewals, cold, warm, &raw_create);
    }
    if let Some(stats) = &stream_stats {
        streams::print(stats);
    }
    if let Some(stats) = &credit_stats {
        println!();
        println!(
            "| credits ({} customers, a grant each) | billstream ops/s | raw ops/s | ratio | target | p50 billstream / raw | p99 billstream / raw |",
            stats.customers
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        println!(
            "{}",
            row(
                "usage vs raw create (alternating)",
                &stats.usage,
                &stats.usage_raw,
                USAGE_TARGET
            )
        );
        println!(
            "{}",
            row(
                "balance vs raw get (alternating)",
                &stats.balance,
                &stats.balance_raw,
                BALANCE_TARGET
            )
        );
        let hot = stats.hot.ops_per_second();
        println!(
            "| usage on one hot customer | {hot:.0} | | | {HOT_USAGE_TARGET:.0}/s{} | {} | {} |",
            if hot >= HOT_USAGE_TARGET {
                ""
            } else {
                " BELOW TARGET"
            },
            millis(stats.hot.percentile(0.50)),
            millis(stats.hot.percentile(0.99)),
        );
        for (name, phase) in [
            ("usage", &stats.usage),
            ("hot usage", &stats.hot),
            ("balance", &stats.balance),
        ] {
            if phase.errors > 0 {
                println!(
                    "ERRORS in {name}: {} (first: {})",
                    phase.errors,
                    phase.first_error.as_deref().unwrap_or("?")
                );
            }
        }
    }
    if let Some(stats) = &portal_stats {
        let p99 = stats.first_byte(0.99);
        println!();
        println!(
            "| portal page ({} sessions) | pages/s | first byte p50 / p99 | whole page p50 / p99 | target |",
            stats.sessions
        );
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| GET /portal?session=… | {:.0} | {} / {} | {} / {} | p99 first byte < {PORTAL_P99_TARGET_MS:.0} ms{} |",
            stats.page.ops_per_second(),
            millis(stats.first_byte(0.50)),
            millis(p99),
            millis(stats.page.percentile(0.50)),
            millis(stats.page.percentile(0.99)),
            if p99.is_some_and(|ms| ms < PORTAL_P99_TARGET_MS) { "" } else { " ABOVE TARGET" },
        );
        if stats.page.errors > 0 {
            println!(
                "ERRORS in portal: {} (first: {})",
                stats.page.errors,
                stats.page.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    println!();
    let rebuild_ratio = rebuild_rate / raw_rate;
    println!("| rebuild of customer_list from {log_events} events | billstream events/s | raw decode events/s | ratio | target |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| rebuild | {rebuild_rate:.0} | {raw_rate:.0} | {rebuild_ratio:.2}{} | {REBUILD_TARGET:.2} |",
        if rebuild_ratio >= REBUILD_TARGET { "" } else { " BELOW TARGET" }
    );
    println!();
    println!(
        "| after the create phase | portal_overview events still to apply | caught up in | bench process CPU meanwhile |"
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| catch-up | {} | {:.2} s | {:.2} s |",
        catch_up_left.events,
        catch_up_left.took.as_secs_f64(),
        catch_up_left.cpu.as_secs_f64()
    );
    println!();
    println!(
        "peak resident memory of the bench process (server and load generator): {:.0} MB",
        peak_resident_bytes() as f64 / 1e6
    );
    println!();
    println!("| phase | ok | errors | bench process share of busy CPU | machine CPU busy |");
    println!("|---|---:|---:|---:|---:|");
    for (name, stats) in [
        ("raw create", &raw_create),
        ("http create", &http_create),
        ("raw get", &raw_get),
        ("http get", &http_get),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            stats.ok,
            stats.errors,
            stats
                .cpu
                .map_or("?".to_owned(), |c| percent(c.process_share)),
            stats
                .cpu
                .map_or("?".to_owned(), |c| percent(c.machine_busy)),
        );
    }
    let mut errors = credit_stats.as_ref().map_or(0, |stats| {
        stats.usage.errors
            + stats.usage_raw.errors
            + stats.hot.errors
            + stats.balance.errors
            + stats.balance_raw.errors
    });
    // A page its change never reached is an error of the streams phase.
    errors += stream_stats
        .as_ref()
        .map_or(0, |stats| (stats.streams - stats.reached) as u64);
    for (name, stats) in [
        ("raw create", &raw_create),
        ("http create", &http_create),
        ("raw get", &raw_get),
        ("http get", &http_get),
    ] {
        if stats.errors > 0 {
            errors += stats.errors;
            println!();
            println!(
                "ERRORS in {name}: {} (first: {})",
                stats.errors,
                stats.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(errors)
}

/// Usage must go at least this fraction of raw single-row INSERT transactions, and a balance
/// read this fraction of a raw SELECT by key; one hot customer at least this many usages/s.
const USAGE_TARGET: f64 = 0.3;
/// The portal page's first byte at `--clients` concurrent sessions, p99 (issue 13).
const PORTAL_P99_TARGET_MS: f64 = 50.0;
const BALANCE_TARGET: f64 = 0.5;
const HOT_USAGE_TARGET: f64 = 1000.0;

/// Renewals must go at least this fraction of raw single-row INSERT transactions.
const RENEWAL_TARGET: f64 = 0.1;

fn print_billing(
    renewals: &billing::Renewals,
    cold: &billing::PdfDownloads,
    warm: &billing::PdfDownloads,
    raw_create: &Stats,
) {
    let ratio = renewals.per_second() / raw_create.ops_per_second();
    println!(
        "| renewals ({} subscriptions, one test-clock advance; set up in {:.1} s) | renewals/s | raw single-row INSERT tx/s | ratio | target |",
        renewals.subscriptions,
        renewals.setup.as_secs_f64()
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| renewals in {:.1} s | {:.0} | {:.0} | {ratio:.2}{} | {RENEWAL_TARGET:.2} |",
        renewals.took.as_secs_f64(),
        renewals.per_second(),
        raw_create.ops_per_second(),
        if ratio >= RENEWAL_TARGET {
            ""
        } else {
            " BELOW TARGET"
        }
    );
    println!(
        "bench process CPU meanwhile: {:.1} s ({:.1} ms a renewal; the rest of the machine's is PostgreSQL's)",
        renewals.cpu.as_secs_f64(),
        renewals.cpu.as_secs_f64() * 1000.0 / renewals.subscriptions as f64
    );
    println!(
        "after it: {} invoices paid, {} charges succeeded, last number {}",
        renewals.paid_invoices,
        renewals.succeeded_charges,
        renewals.last_number.as_deref().unwrap_or("-")
    );
    println!();
    println!("| invoice PDF over HTTP | downloads | PDFs/s | p50 | p99 | mean size |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (case, downloads) in [("cold cache (each rendered)", cold), ("warm cache", warm)] {
        println!(
            "| {case} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.0} kB |",
            downloads.downloads,
            downloads.per_second(),
            downloads.quantile_millis(0.5),
            downloads.quantile_millis(0.99),
            downloads.bytes as f64 / downloads.downloads.max(1) as f64 / 1000.0
        );
    }
}

const BENCH_TABLE: &str = "
CREATE TABLE bench_customers
(
    id                    text PRIMARY KEY,
    tenant                text        NOT NULL,
    merchant_id           text        NOT NULL,
    email                 text        NOT NULL,
    name                  text,
    external_customer_id  text,
    billing_address_line1 text,
    billing_address_line2 text,
    billing_city          text,
    billing_postal_code   text,
    billing_country       text,
    tax_id                text,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    deleted_at            timestamptz,
    version               bigint      NOT NULL
)";

async fn raw_pool(url: &str, size: u32) -> Result<PgPool, String> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .disable_statement_logging();
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        // Configured like the app's pool, so both sides skip the ping on acquire.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .map_err(|e| format!("raw pool: {e}"))
}

/// One single-row INSERT in autocommit: a transaction of its own. Answers the row's id.
/// The raw phases, which later phases run again right before themselves: this machine's
/// speed drifts over a run, and a ratio is fairest against raw work measured beside it.
#[derive(Clone)]
struct RawPhases {
    pool: PgPool,
    http: Arc<Http>,
    /// The pre-filled rows of `bench_customers` that raw gets read.
    ids: Arc<Vec<String>>,
    clients: usize,
    timing: Timing,
}

impl RawPhases {
    /// Raw create: single-row INSERTs of unique emails marked `label`.
    async fn create(&self, label: &str) -> Stats {
        let pool = self.pool.clone();
        let http = self.http.clone();
        let label = label.to_owned();
        drive(self.clients, self.timing, move |ctx| {
            let pool = pool.clone();
            let http = http.clone();
            let email = ctx.email(&http.run, &label);
            async move { raw_insert(&pool, &http, &email).await.map(drop) }
        })
        .await
    }

    /// Raw get: a row of `ids` by its key.
    async fn get(&self) -> Stats {
        let pool = self.pool.clone();
        let ids = self.ids.clone();
        drive(self.clients, self.timing, move |ctx| {
            let pool = pool.clone();
            let ids = ids.clone();
            async move {
                let id = &ids[(ctx.random % ids.len() as u64) as usize];
                let row = sqlx::query("SELECT * FROM bench_customers WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|e| e.to_string())?;
                match row {
                    Some(row) if row.try_get::<String, _>("id").ok().as_ref() == Some(id) => Ok(()),
                    _ => Err(format!("row {id} not found")),
                }
            }
        })
        .await
    }
}

async fn raw_insert(pool: &PgPool, http: &Http, email: &str) -> Result<String, String> {
    let id = format!("cust_{}", uuid::Uuid::now_v7().simple());
    let now = Utc::now();
    sqlx::query(
        "INSERT INTO bench_customers (id, tenant, merchant_id, email, name, external_customer_id, \
         billing_address_line1, billing_address_line2, billing_city, billing_postal_code, \
         billing_country, tax_id, created_at, updated_at, deleted_at, version) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, $6, $6, NULL, 1)",
    )
    .bind(&id)
    .bind(&http.tenant)
    .bind(&http.merchant_id)
    .bind(email)
    .bind("Bench Customer")
    .bind(now)
    .execute(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(id)
}

/// Gives the customer a history of LONG_HISTORY events by appending detail changes to the
/// log directly (through the API this would take a minute). Its first command then replays
/// them all and snapshots the result.
async fn grow_history(pool: &PgPool, id: &str, tenant: &str) -> Result<(), String> {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, tenant) \
         SELECT 'Customer', $1, g, 'CustomerDetailsUpdated', '1', \
           json_build_object('CustomerDetailsUpdated', json_build_object( \
             'changes', json_build_object('billingCity', 'city ' || g), \
             'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))), \
           json_build_object('tenant', $2::text), $2 \
         FROM generate_series(2, $3) AS g",
    )
    .bind(id)
    .bind(tenant)
    .bind(LONG_HISTORY)
    .execute(pool)
    .await
    .map_err(|e| format!("grow the long history: {e}"))?;
    Ok(())
}

/// Appends customers' histories straight to the log until it holds about `events` more
/// events: per customer a creation, two detail changes and an email change.
async fn grow_log(
    pool: &PgPool,
    tenant: &str,
    merchant_id: &str,
    events: i64,
) -> Result<(), String> {
    let customers = events / 4;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata, tenant) \
         SELECT 'Customer', 'cust_rebuild_' || c, s, \
           (ARRAY['CustomerCreated', 'CustomerDetailsUpdated', 'EmailChanged', \
                  'CustomerDetailsUpdated'])[s], '1', \
           CASE s \
             WHEN 1 THEN json_build_object('CustomerCreated', json_build_object( \
               'id', 'cust_rebuild_' || c, \
               'tenant', json_build_object('merchantId', $2::text, 'mode', 'test'), \
               'email', 'rebuild' || c || '@example.com', \
               'details', json_build_object('name', 'Customer ' || c, 'billingCountry', 'DE'), \
               'at', '2026-01-01T00:00:00Z')) \
             WHEN 3 THEN json_build_object('EmailChanged', json_build_object( \
               'email', 'Rebuilt' || c || '@example.com', 'shared', false, \
               'at', '2026-01-03T00:00:00Z')) \
             ELSE json_build_object('CustomerDetailsUpdated', json_build_object( \
               'changes', json_build_object('billingCity', 'City ' || s, 'taxId', 'T' || c), \
               'at', '2026-01-0' || s || 'T00:00:00Z')) \
           END, \
           json_build_object('tenant', $1::text, 'actor', 'key_bench'), $1 \
         FROM generate_series(1, 4) AS s, generate_series(1, $3) AS c",
    )
    .bind(tenant)
    .bind(merchant_id)
    .bind(customers)
    .execute(pool)
    .await
    .map_err(|e| format!("grow the log: {e}"))?;
    if analyzing() {
        let _ = sqlx::query("ANALYZE events").execute(pool).await;
    }
    Ok(())
}

/// An event row decoded into a struct, as a projection would receive it.
#[derive(sqlx::FromRow)]
#[allow(dead_code)]
struct RawEvent {
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

/// Reads every Customer event in the order a rebuild reads them, decoding each row.
async fn raw_scan(pool: &PgPool) -> Result<u64, String> {
    let mut rows = sqlx::query_as::<_, RawEvent>(
        "SELECT aggregate_id, sequence, event_type, event_version, payload, metadata \
         FROM events WHERE aggregate_type = 'Customer' \
         ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .fetch(pool);
    let mut count = 0u64;
    while let Some(event) = rows.try_next().await.map_err(|e| e.to_string())? {
        count += u64::from(event.sequence > 0);
    }
    Ok(count)
}

/// The tables the phases write. Autovacuum is off for them during the run, and each phase
/// starts after a VACUUM ANALYZE and a CHECKPOINT instead: otherwise the vacuum of what one
/// phase wrote, and the full-page writes after a checkpoint, land inside whichever phase runs
/// next, and the create ratio varied between 0.10 and 0.32 from run to run.
const WRITTEN_TABLES: [&str; 3] = ["events", "customer_list", "bench_customers"];

async fn quiet_autovacuum(pool: &PgPool) {
    for table in WRITTEN_TABLES {
        let sql = format!("ALTER TABLE {table} SET (autovacuum_enabled = off)");
        if let Err(e) = sqlx::query(&sql).execute(pool).await {
            eprintln!("autovacuum stays on for {table} ({e}); figures may vary more");
        }
    }
}

/// Starts a phase on settled tables (see [`WRITTEN_TABLES`]).
/// What the portal's catch-up had left to do when a phase ended.
struct CatchUpLeft {
    events: i64,
    took: Duration,
    cpu: Duration,
}

/// This process's CPU time so far (user and system), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at its closing parenthesis;
    // utime and stime are the 14th and 15th fields, in clock ticks (100 a second here).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The most memory this process has held resident (`VmHWM`), in bytes.
fn peak_resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

async fn catch_up_after(pool: &PgPool) -> CatchUpLeft {
    let lag = |pool: PgPool| async move {
        projections::catch_up::standing(&pool, "portal_overview")
            .await
            .map_or(0, |(_, lag)| lag)
    };
    let events = lag(pool.clone()).await;
    let started = Instant::now();
    let cpu = process_cpu();
    while lag(pool.clone()).await > 0 && started.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    CatchUpLeft {
        events,
        took: started.elapsed(),
        cpu: process_cpu().saturating_sub(cpu),
    }
}

/// The tables the credits phases write besides the log (autovacuum stays on for them; they
/// are vacuumed before each credits phase all the same).
const CREDIT_TABLES: [&str; 2] = ["credit_grants", "credit_transactions"];

/// VACUUM (ANALYZE) of every table that holds rows: what a set-up wrote is settled before the
/// phase it set up, as autovacuum would have settled it in service. A table nothing has
/// written yet is left alone, as autovacuum leaves it: analyzed while empty, it would be
/// planned as empty however far it grows in the phase (PostgreSQL trusts an analyzed table's
/// size; one never analyzed it assumes to be at least ten pages). Rows, not the statistics
/// views, say what was written: those lag the writes by up to seconds.
async fn settle_written_tables(pool: &PgPool) {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let mut written = Vec::new();
    for table in &tables {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM \"{table}\")");
        if let Ok(true) = sqlx::query_scalar::<_, bool>(&sql).fetch_one(pool).await {
            written.push(table.as_str());
        }
    }
    settle_tables(pool, &written).await;
}

/// VACUUM (ANALYZE) of `tables`, as [`checkpoint`] does for the ones every phase writes.
async fn settle_tables(pool: &PgPool, tables: &[&str]) {
    for table in tables {
        let vacuum = if analyzing() {
            "VACUUM ANALYZE"
        } else {
            "VACUUM"
        };
        if let Err(e) = sqlx::query(&format!("{vacuum} {table}"))
            .execute(pool)
            .await
        {
            eprintln!("no {vacuum} of {table} ({e}); figures may vary more");
        }
    }
}

async fn checkpoint(pool: &PgPool) {
    for table in WRITTEN_TABLES {
        let vacuum = if analyzing() {
            "VACUUM ANALYZE"
        } else {
            "VACUUM"
        };
        let _ = sqlx::query(&format!("{vacuum} {table}"))
            .execute(pool)
            .await;
    }
    if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
        eprintln!("no CHECKPOINT before the phase ({e}); figures may vary more");
    }
}

fn mean_millis(latencies: &[Duration]) -> f64 {
    let total: Duration = latencies.iter().sum();
    total.as_secs_f64() * 1000.0 / latencies.len().max(1) as f64
}

/// The app as a client sees it.
struct Http {
    connections: http1::Connections,
    key: String,
    tenant: String,
    merchant_id: String,
    /// Makes this run's emails unique.
    run: String,
}

impl Http {
    /// `POST /v1/customers`; answers the new customer's id, or an error for anything but 2xx.
    async fn create(&self, email: &str) -> Result<String, String> {
        let body = serde_json::to_vec(&json!({ "email": email, "name": "Bench Customer" }))
            .map_err(|e| e.to_string())?;
        let (status, body) = self
            .connections
            .send("POST", "/v1/customers", &self.key, Some(&body))
            .await
            .map_err(|e| format!("POST /v1/customers: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "POST /v1/customers: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let json: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("POST /v1/customers: body is not JSON: {e}"))?;
        json["customer"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("POST /v1/customers: no customer.id in {json}"))
    }

    /// `POST /v1/customers/{id}` setting the name; an error for anything but 2xx.
    async fn update(&self, id: &str, name: &str) -> Result<(), String> {
        let path = format!("/v1/customers/{id}");
        let body = serde_json::to_vec(&json!({ "name": name })).map_err(|e| e.to_string())?;
        let (status, body) = self
            .connections
            .send("POST", &path, &self.key, Some(&body))
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "POST {path}: {status} {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(())
    }

    /// `GET /v1/customers/{id}`; an error for anything but 2xx or another customer's body.
    async fn get(&self, id: &str) -> Result<(), String> {
        self.get_naming(&format!("/v1/customers/{id}"), &[id]).await
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    warmup: Duration,
    measure: Duration,
}

/// What one operation knows about itself.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    task: usize,
    seq: u64,
    random: u64,
}

impl Ctx {
    fn email(&self, run: &str, side: &str) -> String {
        format!("{side}-{run}-{}-{}@example.com", self.task, self.seq)
    }
}

/// xorshift64*: plenty for picking ids, and no dependency.
struct Random(u64);

impl Random {
    fn new() -> Self {
        Random((uuid::Uuid::new_v4().as_u128() as u64) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[derive(Debug, Default)]
struct Stats {
    /// Operations that succeeded, started after the warm-up and ended in the window.
    ok: u64,
    /// Failed operations, warm-up included.
    errors: u64,
    first_error: Option<String>,
    /// Sorted latencies of the `ok` operations, in microseconds.
    latencies: Vec<u32>,
    seconds: f64,
    cpu: Option<Cpu>,
}

impl Stats {
    /// Both measurements as one: their operations over their summed time.
    fn merge(mut self, other: Stats) -> Stats {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.seconds += other.seconds;
        self.cpu = self.cpu.or(other.cpu);
        self
    }

    fn ops_per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> Option<f64> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank =
            ((p * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        Some(f64::from(self.latencies[rank - 1]) / 1000.0)
    }
}

/// Runs `op` on `clients` tasks, each in a loop, for the warm-up and then the measured window.
async fn drive<F, Fut>(clients: usize, timing: Timing, op: F) -> Stats
where
    F: Fn(Ctx) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let start = Instant::now();
    let warm_end = start + timing.warmup;
    let end = warm_end + timing.measure;
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(warm_end.into()).await;
        let before = CpuSample::now();
        tokio::time::sleep_until(end.into()).await;
        let after = CpuSample::now();
        before
            .zip(after)
            .map(|(before, after)| after.since(&before))
    });
    let tasks: Vec<_> = (0..clients)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut stats = Stats::default();
                let mut random = Random::new();
                let mut seq = 0;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let ctx = Ctx {
                        task,
                        seq,
                        random: random.next(),
                    };
                    seq += 1;
                    let result = op(ctx).await;
                    let t1 = Instant::now();
                    match result {
                        Ok(()) => {
                            if t0 >= warm_end && t1 <= end {
                                stats.ok += 1;
                                let micros = (t1 - t0).as_micros();
                                stats
                                    .latencies
                                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
                            }
                        }
                        Err(error) => {
                            stats.errors += 1;
                            stats.first_error.get_or_insert(error);
                        }
                    }
                }
                stats
            })
        })
        .collect();
    let mut total = Stats {
        seconds: timing.measure.as_secs_f64(),
        ..Stats::default()
    };
    for task in tasks {
        match task.await {
            Ok(stats) => {
                total.ok += stats.ok;
                total.errors += stats.errors;
                if total.first_error.is_none() {
                    total.first_error = stats.first_error;
                }
                total.latencies.extend(stats.latencies);
            }
            Err(e) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert(format!("client task failed: {e}"));
            }
        }
    }
    total.latencies.sort_unstable();
    total.cpu = sampler.await.ok().flatten();
    total
}

fn row(case: &str, billstream: &Stats, raw: &Stats, target: f64) -> String {
    let ratio = if raw.ops_per_second() > 0.0 {
        billstream.ops_per_second() / raw.ops_per_second()
    } else {
        0.0
    };
    let verdict = if ratio >= target { "" } else { " BELOW TARGET" };
    format!(
        "| {case} | {:.0} | {:.0} | {ratio:.2}{verdict} | {target:.2} | {} / {} | {} / {} |",
        billstream.ops_per_second(),
        raw.ops_per_second(),
        millis(billstream.percentile(0.50)),
        millis(raw.percentile(0.50)),
        millis(billstream.percentile(0.99)),
        millis(raw.percentile(0.99)),
    )
}

fn millis(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |ms| format!("{ms:.2} ms"))
}

fn percent(value: f64) -> String {
    format!("{:.0}%", value * 100.0)
}

/// What the figures depend on: cores, PostgreSQL version and durability settings.
async fn environment(pool: &PgPool, args: Args) -> String {
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let setting = |name: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(&format!("SHOW {name}"))
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|_| "?".to_owned())
        }
    };
    let version: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(pool)
        .await
        .unwrap_or_else(|_| "?".to_owned());
    format!(
        "# billstream bench\n\n\
         nproc: {nproc}\n\
         PostgreSQL: {version}\n\
         server: {} (synchronous_commit={}, fsync={}, shared_buffers={}, max_connections={})\n\
         clients: {}, app pool: {} connections, raw pool: {} connections, \
         tokio worker threads: {nproc} (server and load generator share this process)",
        projections::database::redacted(&billstream_tests::server_url()),
        setting("synchronous_commit").await,
        setting("fsync").await,
        setting("shared_buffers").await,
        setting("max_connections").await,
        args.clients,
        args.clients,
        args.clients,
    )
}

/// CPU time from /proc (Linux only): this process's, and the machine's busy and total.
#[derive(Debug, Clone, Copy)]
struct CpuSample {
    process: u64,
    busy: u64,
    total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Cpu {
    /// This process's share of the machine's busy CPU time (the rest is mostly PostgreSQL).
    process_share: f64,
    /// How busy the machine was, over all cores.
    machine_busy: f64,
}

impl CpuSample {
    fn now() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let process = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = machine
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let total: u64 = cpu.iter().take(8).sum();
        let idle = cpu.get(3)? + cpu.get(4).copied().unwrap_or(0);
        Some(CpuSample {
            process,
            busy: total - idle,
            total,
        })
    }

    fn since(&self, before: &CpuSample) -> Cpu {
        let busy = self.busy.saturating_sub(before.busy).max(1) as f64;
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        Cpu {
            process_share: self.process.saturating_sub(before.process) as f64 / busy,
            machine_busy: busy / total,
        }
    }
}
