//! The harness for billstream's black-box tests: each test spawns the real app on
//! 127.0.0.1:0 against a fresh PostgreSQL database of its own and talks HTTP to it.
//!
//! `TEST_DATABASE_URL` names the server (default `postgres://postgres@127.0.0.1:5432`).
//!
//! A test's database is a copy of a template database that holds the migrated schema, made
//! once per set of migrations and kept on the server between runs: copying is cheaper than
//! running every migration again for every test. The template is named after a hash of the
//! migrations (`billstream_template_<hash>`), so a changed or added migration gets a template
//! of its own. Templates of other migrations are left in place, since another checkout's
//! tests may still be copying them; drop them by hand when they pile up:
//! `ALTER DATABASE "<name>" IS_TEMPLATE false; DROP DATABASE "<name>";`.

pub mod billing;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use billstream::merchants::{create_merchant, NewMerchant, Provider};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{oneshot, OnceCell};
use tokio::task::JoinHandle;

pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The server's `postgres` database, where databases are created and dropped.
fn admin_url() -> String {
    format!("{}/postgres", server_url())
}

/// An identifier quoted for PostgreSQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The template's name: a hash of every migration's version, name and SQL, as the app applies
/// them. (std's hasher is the same for every build of one toolchain; another toolchain may
/// hash otherwise, which only makes a new template.)
fn template_name() -> String {
    let mut hash = DefaultHasher::new();
    for migration in projections::database::MIGRATOR.iter() {
        migration.version.hash(&mut hash);
        migration.description.hash(&mut hash);
        migration.sql.hash(&mut hash);
    }
    format!("billstream_template_{:016x}", hash.finish())
}

/// The name of the migrated template, made on the first call in this process unless the
/// server already has it.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE.get_or_init(make_template).await
}

/// Makes the template unless the server has it ready. A session advisory lock on the
/// `postgres` database makes processes that race here take turns, and the template is marked
/// ready (`IS_TEMPLATE`, no connections allowed) only once migrated, so one left half made by
/// a process that died is made again.
async fn make_template() -> String {
    let name = template_name();
    let mut admin = PgConnection::connect(&admin_url())
        .await
        .expect("connect to the postgres database");
    sqlx::query("SELECT pg_advisory_lock(hashtext('billstream_tests.template'))")
        .execute(&mut admin)
        .await
        .expect("template lock");
    let ready: Option<bool> =
        sqlx::query_scalar("SELECT datistemplate FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_optional(&mut admin)
            .await
            .expect("look up the template");
    if ready != Some(true) {
        if ready.is_some() {
            sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", quoted(&name)))
                .execute(&mut admin)
                .await
                .expect("drop a half-made template");
        }
        let pool =
            projections::database::connect_and_migrate(&format!("{}/{}", server_url(), name), 1)
                .await
                .expect("migrate the template");
        // PostgreSQL copies no database that has a session on it.
        pool.close().await;
        sqlx::query(&format!(
            "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
            quoted(&name)
        ))
        .execute(&mut admin)
        .await
        .expect("mark the template ready");
    }
    // Closing the session ends the advisory lock too.
    admin.close().await.expect("close the admin connection");
    name
}

/// A database made for one test and dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// A new name on the server; nothing is created until something connects to it with
    /// `projections::database::connect_and_migrate`. [`TestDatabase::create`] makes a migrated
    /// one faster.
    pub fn new() -> Self {
        let name = format!("billstream_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{}", server_url(), name);
        Self { name, url }
    }

    /// A new database with every migration applied: a copy of the template.
    pub async fn create() -> Self {
        let template = template().await;
        let database = Self::new();
        let statement = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quoted(&database.name),
            quoted(template)
        );
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .expect("connect to the postgres database");
        let mut attempt = 1;
        loop {
            match sqlx::query(&statement).execute(&mut admin).await {
                Ok(_) => break,
                // 55006: the template still has a session on it, PostgreSQL having waited 5 s
                // for it to end (say a backend of its migration, still exiting, or a session
                // of a tool opened before it took no more connections): try again.
                Err(sqlx::Error::Database(e))
                    if e.code().as_deref() == Some("55006") && attempt < 5 =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("copy the template {template}: {e}"),
            }
        }
        admin.close().await.expect("close the admin connection");
        database
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we could await in: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) =
                    PgConnection::connect(&format!("{}/postgres", server_url())).await
                {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}

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
        let server = tokio::spawn(billstream::server::serve(listener, pool.clone(), async {
            let _ = stop.await;
        }));
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
