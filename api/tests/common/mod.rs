//! Helpers shared by the api crate's tests that need a database of their own.

#![allow(dead_code)]

pub fn server() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database name no one uses yet (the code under test creates it), dropped when the guard
/// goes.
pub struct FreshDatabase(pub String);

impl FreshDatabase {
    pub fn new() -> Self {
        Self(format!("billstream_api_{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn url(&self) -> String {
        format!("{}/{}", server(), self.0)
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let name = self.0.clone();
        // Drop may run inside a test's runtime, where blocking on another is not allowed.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut admin) =
                    sqlx::PgConnection::connect(&format!("{}/postgres", server())).await
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
