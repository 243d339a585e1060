//! The live-stream phase: `--streams` portal pages open on the one instance (each its own
//! customer's `GET /v1/customers/portal/stream`), the memory the instance holds for them, and
//! whether a change of each customer reaches its page, how soon.
//!
//! The server runs in this process, so the process's resident memory counts both the server's
//! streams and the load generator's connections. The generator's share is measured on its
//! own first: the same connections, held open against a listener that accepts and says
//! nothing. The instance's share is the rest.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use crate::Http;

/// How long a change may take to reach its page before it counts as lost.
const DEADLINE: Duration = Duration::from_secs(10);

/// What the phase measured.
pub struct StreamsStats {
    pub streams: usize,
    /// Resident memory of the whole process with the pages open, less before, in bytes.
    pub process_extra: i64,
    /// The load generator's share of it: the same connections to a silent listener.
    pub client_extra: i64,
    /// Pages the change of their customer reached within `DEADLINE`.
    pub reached: usize,
    /// From each change's answer to its arrival on the page, sorted, in ms.
    pub delays: Vec<f64>,
    /// The time from the first change sent to the last arrival.
    pub took: Duration,
}

impl StreamsStats {
    pub fn instance_extra(&self) -> i64 {
        self.process_extra - self.client_extra
    }

    pub fn delay(&self, p: f64) -> f64 {
        if self.delays.is_empty() {
            return f64::NAN;
        }
        let i = ((self.delays.len() - 1) as f64 * p).round() as usize;
        self.delays[i]
    }
}

/// The process's resident memory now (`VmRSS`), in bytes.
fn resident_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<i64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// An open page: its connection, read from by a task of its own until its change arrives.
struct Page {
    reader: tokio::task::JoinHandle<Option<Instant>>,
}

/// Opens the stream of the customer with `external_id` and waits for its `ready`; then a task
/// reads on until a `customer` change arrives, and answers when.
async fn open_page(http: &Http, addr: SocketAddr, external_id: &str) -> Result<Page, String> {
    let mut connection = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!(
        "GET /v1/customers/portal/stream?externalCustomerId={external_id} HTTP/1.1\r\n\
         Host: bench\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        http.key
    );
    connection
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut seen = Vec::with_capacity(1024);
    read_until(&mut connection, &mut seen, b"event: ready").await?;
    if !seen.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "stream answered {}",
            String::from_utf8_lossy(&seen[..seen.len().min(200)])
        ));
    }
    let reader = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(1024);
        read_until(&mut connection, &mut seen, b"event: customer")
            .await
            .ok()?;
        Some(Instant::now())
    });
    Ok(Page { reader })
}

/// Reads into `seen` until it holds `marker`; keeps only what follows the last full line
/// besides, so a long stream costs no memory.
async fn read_until(
    connection: &mut TcpStream,
    seen: &mut Vec<u8>,
    marker: &[u8],
) -> Result<(), String> {
    let mut buffer = [0u8; 2048];
    loop {
        if seen.windows(marker.len()).any(|w| w == marker) {
            return Ok(());
        }
        let n = connection
            .read(&mut buffer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the stream ended".into());
        }
        seen.extend_from_slice(&buffer[..n]);
        if seen.len() > 8192 {
            let keep = seen.len() - marker.len();
            seen.drain(..keep);
        }
    }
}

/// The load generator's memory for `count` idle connections like the pages', held against a
/// listener that accepts them and says nothing.
async fn client_share(count: usize) -> Result<i64, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let held = Arc::new(Mutex::new(Vec::new()));
    let acceptor = {
        let held = held.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                held.lock().await.push(socket);
            }
        })
    };
    let before = resident_bytes();
    let mut readers = Vec::with_capacity(count);
    for _ in 0..count {
        let mut connection = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(1024);
            let _ = read_until(&mut connection, &mut seen, b"event: customer").await;
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let extra = resident_bytes() - before;
    for reader in readers {
        reader.abort();
    }
    acceptor.abort();
    held.lock().await.clear();
    Ok(extra)
}

/// Opens `count` pages, one per new customer, then changes every customer once
/// (`clients` at a time) and waits for each page to hear of its own change.
pub async fn measure(
    http: &Arc<Http>,
    addr: SocketAddr,
    clients: usize,
    count: usize,
) -> Result<StreamsStats, String> {
    eprintln!("streams: {count} customers ...");
    let mut customers = Vec::with_capacity(count);
    for n in 0..count {
        let external_id = format!("stream-{}-{n}", http.run);
        let answer = http
            .post_ok(
                "/v1/customers",
                &json!({"email": format!("{external_id}@example.com"), "externalCustomerId": external_id}),
            )
            .await?;
        let id = answer["customer"]["id"]
            .as_str()
            .ok_or("no customer id")?
            .to_owned();
        customers.push((id, external_id));
    }
    let client_extra = client_share(count).await?;

    eprintln!("streams: opening {count} pages ...");
    let before = resident_bytes();
    let mut pages = Vec::with_capacity(count);
    for (_, external_id) in &customers {
        pages.push(open_page(http, addr, external_id).await?);
    }
    // Let the allocator settle what the openings left behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let process_extra = resident_bytes() - before;

    eprintln!("streams: one change per customer ...");
    let started = Instant::now();
    let answered: Vec<Result<Instant, String>> = stream::iter(customers.iter().cloned())
        .map(|(id, _)| {
            let http = http.clone();
            async move {
                http.update(&id, "Streamed").await?;
                Ok(Instant::now())
            }
        })
        .buffered(clients)
        .collect()
        .await;
    let mut delays = Vec::with_capacity(count);
    let mut reached = 0;
    let mut last = started;
    for (page, answered) in pages.into_iter().zip(answered) {
        let answered = answered?;
        let arrival = tokio::time::timeout(DEADLINE, page.reader).await;
        if let Ok(Ok(Some(arrived))) = arrival {
            reached += 1;
            last = last.max(arrived);
            delays.push(arrived.saturating_duration_since(answered).as_secs_f64() * 1000.0);
        }
    }
    delays.sort_by(f64::total_cmp);
    Ok(StreamsStats {
        streams: count,
        process_extra,
        client_extra,
        reached,
        delays,
        took: last - started,
    })
}

/// The phase's table.
pub fn print(stats: &StreamsStats) {
    let mb = |bytes: i64| bytes as f64 / 1e6;
    println!();
    println!("| live streams | open | instance memory (process less load generator) | reached by their change | change to page p50 / p99 / max |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| `GET /v1/customers/portal/stream` | {} | {:.1} MB ({:.1} MB less {:.1} MB){} | {} of {} in {:.2} s | {:.1} / {:.1} / {:.1} ms |",
        stats.streams,
        mb(stats.instance_extra()),
        mb(stats.process_extra),
        mb(stats.client_extra),
        if stats.instance_extra() < 100_000_000 { "" } else { " ABOVE TARGET (100 MB)" },
        stats.reached,
        stats.streams,
        stats.took.as_secs_f64(),
        stats.delay(0.5),
        stats.delay(0.99),
        stats.delays.last().copied().unwrap_or(f64::NAN),
    );
}
