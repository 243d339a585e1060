//! Failed authentication is rate limited per client address: past a burst of failures, every
//! credential not already known good is a 429 JSON error with `Retry-After` — valid or not, so
//! a blocked guesser learns nothing — while a key known good keeps working.

use std::time::Duration;

use billstream_tests::{send_raw, TestApp};
use reqwest::Method;

async fn list_with(app: &TestApp, key: &str) -> billstream_tests::RawResponse {
    send_raw(app.request_as(key, Method::GET, "/v1/customers")).await
}

#[tokio::test]
async fn guessing_keys_is_throttled_and_known_keys_are_not() {
    let app = TestApp::spawn().await;
    // The test key is used once, so it is known good from now on.
    assert_eq!(list_with(&app, app.test_key()).await.status, 200);

    let mut unauthorized = 0;
    let mut limited = None;
    for n in 0..80 {
        let response = list_with(&app, &format!("sk_test_guess{n:040}")).await;
        match response.status {
            401 => unauthorized += 1,
            429 => {
                limited = Some(response);
                break;
            }
            other => panic!("a guess answered {other}: {}", response.text),
        }
    }
    let limited = limited.expect("guessing was never throttled");
    assert!(
        (30..45).contains(&unauthorized),
        "{unauthorized} guesses answered before the throttle"
    );
    assert_eq!(limited.json()["code"], "rate_limited", "{}", limited.text);
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");

    // Blocked: a key known good still works; a valid key not yet seen is refused like a guess,
    // so the answer tells a guesser nothing.
    assert_eq!(list_with(&app, app.test_key()).await.status, 200);
    assert_eq!(list_with(&app, app.live_key()).await.status, 429);
    assert_eq!(list_with(&app, "sk_test_another_guess").await.status, 429);

    // After the wait, one more guess is a plain 401 again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(list_with(&app, "sk_test_after_the_wait").await.status, 401);
}
