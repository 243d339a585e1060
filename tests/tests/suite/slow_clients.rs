//! Slow clients cannot pin the server: connections that send half a request, or headers and
//! then half a body, or nothing at all, or nothing more after a request, are closed within
//! 30 s, and the service keeps answering
//! everyone else meanwhile.

use std::time::{Duration, Instant};

use billstream_tests::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits until the server closes `stream` (or resets it); how long that took.
async fn closed_after(mut stream: TcpStream, started: Instant) -> Option<Duration> {
    let mut buffer = [0u8; 4096];
    let until = Duration::from_secs(30);
    loop {
        let left = until.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // An answer (a 400 for a cut-off body, a 408): read on until the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn hundreds_of_stalled_connections_are_closed_and_others_still_answered() {
    let app = TestApp::spawn().await;
    let started = Instant::now();
    let mut stalled = Vec::new();
    for n in 0..300 {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        let partial: Vec<u8> = match n % 4 {
            // Half a request head.
            0 => b"POST /v1/customers HTTP/1.1\r\nHost: x\r\nContent-".to_vec(),
            // A whole head, then a tenth of the body it announced.
            1 => format!(
                "POST /v1/customers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":",
                app.test_key()
            )
            .into_bytes(),
            // Nothing at all.
            2 => Vec::new(),
            // One whole request on a kept-alive connection, then silence.
            _ => b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        };
        stream.write_all(&partial).await.expect("write");
        stalled.push(stream);
    }
    // Everyone else is still answered, promptly.
    for _ in 0..5 {
        let asked = Instant::now();
        let (status, body) = app.get("/v1/customers").await;
        assert_eq!(status, 200, "{body}");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "answered in {:?}",
            asked.elapsed()
        );
    }
    let closes = futures::future::join_all(
        stalled
            .into_iter()
            .map(|stream| closed_after(stream, started)),
    )
    .await;
    let open = closes.iter().filter(|c| c.is_none()).count();
    let open_by_kind: Vec<usize> = (0..4)
        .map(|kind| {
            closes
                .iter()
                .enumerate()
                .filter(|(n, c)| n % 4 == kind && c.is_none())
                .count()
        })
        .collect();
    assert_eq!(
        open, 0,
        "{open} of 300 stalled connections were still open after 30 s \
         (half a head, half a body, silent, idle after a request: {open_by_kind:?})"
    );
    let slowest = closes.into_iter().flatten().max().unwrap_or_default();
    eprintln!("the slowest stalled connection was closed after {slowest:?}");
}
