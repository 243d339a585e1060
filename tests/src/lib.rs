//! The harness for billstream's black-box tests: each test spawns the real app on
//! 127.0.0.1:0 against a fresh PostgreSQL database of its own and talks HTTP to it.
//!
//! Each test's database is a copy of a migrated template (`projections::testing`).

pub mod billing;
pub mod browser;
pub mod test_deps;

use std::net::SocketAddr;

use billstream::merchants::{create_merchant, NewMerchant, Provider};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use projections::testing::{server_url, TestDatabase};

/// One running billstream and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// A merchant made for the test; most requests use its test key.
    pub merchant: NewMerchant,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    // Declared last: the database is dropped after the server has stopped.
    database: Option<TestDatabase>,
}

impl TestApp {
    /// A new app on a new database, with one merchant.
    pub async fn spawn() -> TestApp {
        let database = TestDatabase::create().await;
        let mut app = Self::spawn_on(&database.url).await;
        app.database = Some(database);
        app
    }

    /// A new app on an existing database (to restart over the same data), with a new merchant.
    /// The database's migrations are brought up to date first (a no-op on a migrated one).
    pub async fn spawn_on(url: &str) -> TestApp {
        Self::spawn_on_with(url, billstream::server::ServeOptions::default()).await
    }

    /// A new app on a new database, served as `options` say, with one merchant.
    pub async fn spawn_with(options: billstream::server::ServeOptions) -> TestApp {
        let database = TestDatabase::create().await;
        let mut app = Self::spawn_on_with(&database.url, options).await;
        app.database = Some(database);
        app
    }

    /// [`TestApp::spawn_on`], served as `options` say.
    pub async fn spawn_on_with(url: &str, options: billstream::server::ServeOptions) -> TestApp {
        let pool = projections::database::connect_and_migrate(url, 8)
            .await
            .expect("test database");
        let merchant = create_merchant(&pool, "Test merchant", Provider::Sandbox)
            .await
            .expect("merchant");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(billstream::server::serve_with(
            listener,
            pool.clone(),
            options,
            async {
                let _ = stop.await;
            },
        ));
        TestApp {
            addr,
            client: reqwest::Client::new(),
            pool,
            merchant,
            shutdown: Some(shutdown),
            server: Some(server),
            database: None,
        }
    }

    /// Stops the server gracefully and waits for it; the database stays.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Takes the database away from this app, so it outlives it (for restarts).
    pub fn take_database(&mut self) -> Option<TestDatabase> {
        self.database.take()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn test_key(&self) -> &str {
        &self.merchant.test_secret_key
    }

    /// A request with the merchant's test key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_as(self.test_key(), method, path)
    }

    pub fn request_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.request(Method::DELETE, path)).await
    }

    /// Creates a customer and returns its JSON; panics unless the API answered 2xx.
    pub async fn create_customer(&self, body: Value) -> Value {
        let (status, json) = self.post("/v1/customers", body).await;
        assert!(
            (200..300).contains(&status),
            "create customer: {status} {json}"
        );
        json["customer"].clone()
    }

    /// Another merchant on the same app.
    pub async fn other_merchant(&self) -> NewMerchant {
        create_merchant(&self.pool, "Other merchant", Provider::Sandbox)
            .await
            .expect("merchant")
    }

    /// The merchant's live key: its own tenant, apart from the test key's.
    pub fn live_key(&self) -> &str {
        &self.merchant.live_secret_key
    }

    pub async fn get_as(&self, key: &str, path: &str) -> (u16, Value) {
        send(self.request_as(key, Method::GET, path)).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        send(self.request_as(key, Method::POST, path).json(&body)).await
    }

    pub async fn delete_as(&self, key: &str, path: &str) -> (u16, Value) {
        send(self.request_as(key, Method::DELETE, path)).await
    }

    /// The ids of every customer `key` lists, in list order; panics unless the list is a 200.
    pub async fn customer_ids_as(&self, key: &str) -> Vec<String> {
        let (status, body) = self.get_as(key, "/v1/customers").await;
        assert_eq!(status, 200, "list customers: {body}");
        body["customers"]
            .as_array()
            .expect("customers array")
            .iter()
            .map(|c| c["id"].as_str().expect("customer id").to_owned())
            .collect()
    }

    /// [`TestApp::customer_ids_as`] with the test key.
    pub async fn customer_ids(&self) -> Vec<String> {
        self.customer_ids_as(self.test_key()).await
    }
}

/// A response as it came: status, headers and the raw body, for tests about the wire format.
pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

pub async fn send_raw(request: RequestBuilder) -> RawResponse {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    RawResponse {
        status,
        headers,
        text,
    }
}

/// Asserts an error response: the status and `{"error": message}` exactly.
#[track_caller]
pub fn assert_error(response: &(u16, Value), status: u16, message: &str) {
    let (actual_status, body) = response;
    assert_eq!(
        (*actual_status, body["error"].as_str()),
        (status, Some(message)),
        "expected {status} {message:?}, got {actual_status} {body}"
    );
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Sends a request and returns the status with the body as JSON (`Value::Null` when the body
/// is not JSON, which the tests then catch).
pub async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    read(response).await
}

pub async fn read(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A JSON timestamp of the API as an instant; panics unless it is ISO 8601 (RFC 3339).
pub fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is not ISO 8601: {e}"))
        .with_timezone(&chrono::Utc)
}
