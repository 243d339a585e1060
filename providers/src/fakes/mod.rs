//! Fake Stripe and Dodo servers for tests: real HTTP on `127.0.0.1`, each provider's wire format,
//! and a record of every request received so a test can assert on exactly what was sent.
//!
//! They are deliberately strict where the real providers are (authentication, body encoding,
//! unknown parameters, missing resources) so a client bug fails here rather than in production.
//! Each server stops when its handle is dropped.

mod dodo;
mod recorder;
mod stripe;

pub use dodo::{DodoDelivery, FakeDodo};
pub use recorder::RecordedRequest;
pub use stripe::{
    FakeStripe, StripeDelivery, CHARGE_DECLINES as STRIPE_CHARGE_DECLINES,
    TEST_PAYMENT_METHODS as STRIPE_TEST_PAYMENT_METHODS,
};

use std::net::SocketAddr;

use chrono::{DateTime, Utc};

/// The provider's own time, which the fakes stamp their objects and sign their webhooks with.
/// A real provider runs on the world's clock, not on billstream's (whose test-mode tenants may
/// run test clocks ahead of it): the service checks a webhook's timestamp against its wall
/// clock, so the fakes' time is the wall clock too — read here, and nowhere else in them.
pub(crate) fn provider_now() -> DateTime<Utc> {
    Utc::now()
}

use axum::Router;
use rand::distributions::Alphanumeric;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A router served on an ephemeral local port until dropped.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    async fn bind() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a fake provider binds an ephemeral port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        (listener, addr)
    }

    fn serve(listener: TcpListener, addr: SocketAddr, router: Router) -> Self {
        let task = tokio::spawn(async move {
            // An accept error ends the fake; the test then fails on connection refused.
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, task }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `prefix` followed by `len` random letters and digits, the shape of both providers' ids.
fn random_id(prefix: &str, len: usize) -> String {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}
