//! URLs the service hands out start with its configured public URL (`--public-url`), or the
//! address it is bound to, never with the request's `Host` header, which the caller controls.

use billstream::merchants::{create_merchant, Provider};
use billstream::server::{serve_with, ServeOptions};
use billstream_tests::{send_raw, TestApp, TestDatabase};
use reqwest::Method;
use serde_json::json;

/// A portal session's URL and a sandbox confirm URL, as `base` answers them to a caller that
/// claims to be at `evil.example`.
async fn handed_out(client: &reqwest::Client, base: &str, key: &str) -> (String, String) {
    let create = send_raw(
        client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(key)
            .json(&json!({"email": "url@example.com", "externalCustomerId": "ext_url"})),
    )
    .await;
    assert_eq!(create.status, 201, "{}", create.text);
    let session = send_raw(
        client
            .post(format!("{base}/v1/customers/portal/sessions"))
            .bearer_auth(key)
            .header("Host", "evil.example")
            .json(&json!({"externalCustomerId": "ext_url"})),
    )
    .await;
    assert_eq!(session.status, 201, "{}", session.text);
    let intent = send_raw(
        client
            .post(format!("{base}/v1/customers/portal/create-setup-intent"))
            .bearer_auth(key)
            .header("Host", "evil.example")
            .json(&json!({"externalCustomerId": "ext_url"})),
    )
    .await;
    assert_eq!(intent.status, 200, "{}", intent.text);
    (
        session.json()["session"]["url"]
            .as_str()
            .unwrap()
            .to_owned(),
        intent.json()["sandbox"]["confirmUrl"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn without_a_public_url_urls_name_the_bound_address_not_the_host_header() {
    let app = TestApp::spawn().await;
    let base = app.url("");
    let (session, confirm) = handed_out(&app.client, &base, app.test_key()).await;
    assert!(
        session.starts_with(&format!("{base}/portal?session=ps_")),
        "{session}"
    );
    assert!(
        confirm.starts_with(&format!("{base}/v1/customers/portal/setup-intents/seti_")),
        "{confirm}"
    );
    // The request itself still reaches the API as usual.
    let (status, _) = app.get("/v1/customers").await;
    assert_eq!(status, 200);
    let _ = send_raw(app.request(Method::GET, "/health")).await;
}

#[tokio::test]
async fn a_configured_public_url_starts_every_url_handed_out() {
    let database = TestDatabase::create().await;
    let pool = projections::database::connect_and_migrate(&database.url, 4)
        .await
        .unwrap();
    let merchant = create_merchant(&pool, "Public", Provider::Sandbox)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        public_url: Some("https://billing.example.com".into()),
        ..ServeOptions::default()
    };
    let server = tokio::spawn(serve_with(listener, pool, options, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let (session, confirm) = handed_out(&client, &base, &merchant.test_secret_key).await;
    assert!(
        session.starts_with("https://billing.example.com/portal?session=ps_"),
        "{session}"
    );
    assert!(
        confirm.starts_with("https://billing.example.com/v1/customers/portal/setup-intents/"),
        "{confirm}"
    );
    let _ = stop.send(());
    let _ = server.await;
}
