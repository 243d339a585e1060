//! The seed's unpaged "get all customers" streams from the database: eight lists of 25,000
//! customers read at once raise the process's memory (the server's, here in the test's own
//! process) by well under 60 MB, and each still returns every customer.

use std::time::Duration;

use billstream_tests::TestApp;

/// This process's resident memory, in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

const CUSTOMERS: i64 = 25_000;

#[tokio::test]
async fn eight_parallel_unpaged_lists_of_25000_customers_stay_within_60_mb() {
    let app = TestApp::spawn().await;
    let tenant = format!("{}:test", app.merchant.merchant_id);
    // The read model's rows, written directly: how they got there is not what is tested.
    sqlx::query(
        "INSERT INTO customer_list (id, tenant, merchant_id, email, email_key, name, \
         billing_address_line1, billing_city, billing_country, created_at, updated_at, version) \
         SELECT 'cust_' || lpad(n::text, 32, '0'), $1, $2, 'c' || n || '@example.com', \
                'c' || n || '@example.com', 'Customer number ' || n, n || ' Long Street Name', \
                'Some City', 'US', now(), now(), 1 \
         FROM generate_series(1, $3) n",
    )
    .bind(&tenant)
    .bind(&app.merchant.merchant_id)
    .bind(CUSTOMERS)
    .execute(&app.pool)
    .await
    .unwrap();

    let before = resident();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(resident(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    // The client reads each body as it comes and keeps none of it, so that what is measured
    // is the server's.
    let lists = (0..8).map(|_| {
        let request = app.request(reqwest::Method::GET, "/v1/customers");
        async move {
            let mut response = request.send().await.expect("list");
            assert_eq!(response.status(), 200);
            let mut bytes = 0usize;
            let mut customers = 0usize;
            // The previous chunk's last five bytes, so that a match split across two chunks
            // is counted (and none twice: five bytes hold no whole match).
            let mut carry: Vec<u8> = Vec::new();
            let mut tail: Vec<u8> = Vec::new();
            while let Some(chunk) = response.chunk().await.expect("chunk") {
                bytes += chunk.len();
                let mut window = std::mem::take(&mut carry);
                window.extend_from_slice(&chunk);
                customers += window.windows(6).filter(|w| w == b"\"id\":\"").count();
                carry = window[window.len().saturating_sub(5)..].to_vec();
                tail.extend_from_slice(&chunk);
                tail = tail[tail.len().saturating_sub(32)..].to_vec();
            }
            (bytes, customers, tail)
        }
    });
    let results = futures::future::join_all(lists).await;
    sampler.abort();
    let grew = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);
    eprintln!(
        "eight lists of {CUSTOMERS} customers ({} bytes each): resident memory grew by {:.1} MB",
        results[0].0,
        grew as f64 / 1e6
    );
    for (_, customers, tail) in &results {
        assert_eq!(*customers as i64, CUSTOMERS, "every customer listed");
        assert!(
            tail.ends_with(b"],\"hasMore\":false}"),
            "{}",
            String::from_utf8_lossy(tail)
        );
    }
    assert!(
        grew < 60_000_000,
        "resident memory grew by {:.1} MB",
        grew as f64 / 1e6
    );
}
