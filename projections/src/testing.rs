//! Databases for tests (feature `testing`): each test gets a fresh database of its own, a copy
//! of a template database that holds the migrated schema, made once per set of migrations and
//! kept on the server between runs: copying is cheaper than running every migration again for
//! every test. The template is named after a hash of the migrations
//! (`billstream_template_<hash>`), so a changed or added migration gets a template of its own.
//! Templates of other migrations are left in place, since another checkout's tests may still be
//! copying them; drop them by hand when they pile up:
//! `ALTER DATABASE "<name>" IS_TEMPLATE false; DROP DATABASE "<name>";`.
//!
//! `TEST_DATABASE_URL` names the server (default `postgres://postgres@127.0.0.1:5432`).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use sqlx::{Connection, PgConnection};

/// For tests that look into the database itself: every query stays inside this crate's
/// dependency on sqlx.
pub use sqlx;
use tokio::sync::OnceCell;

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
    for migration in crate::database::MIGRATOR.iter() {
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
        let pool = crate::database::connect_and_migrate(&format!("{}/{}", server_url(), name), 1)
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
    /// `crate::database::connect_and_migrate`. [`TestDatabase::create`] makes a migrated
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
        drop_database(&self.name);
    }
}

/// Drops database `name` of the test server, whatever is connected to it. It runs outside any
/// async context it could await in (a `Drop`), so it uses a thread and a runtime of its own.
pub fn drop_database(name: &str) {
    let name = name.to_owned();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quoted(&name)
                ))
                .execute(&mut admin)
                .await;
            }
        });
    })
    .join();
}
