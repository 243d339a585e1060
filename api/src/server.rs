//! The server loop: accepts connections (up to a bound), serves each with HTTP/1 under
//! timeouts, and on shutdown stops accepting, lets requests in flight finish and closes idle
//! connections. Written on hyper directly because `axum::serve` sets no header-read timeout:
//! a client that sends half a request line and then nothing held its connection forever.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use app::flows::DeathPlan;
use app::reactions::Reactions;
use app::App;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use projections::database::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::router;

/// Connections served at once; past this, new ones are closed as soon as they are accepted
/// (the machine's file descriptors and memory are not the attacker's to spend).
pub const MAX_CONNECTIONS: usize = 2048;
/// A request's head (line and headers) must arrive within this, counted from when the server
/// starts waiting for it: half-sent requests and silent connections are closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for connections to finish before it lets them go.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How the service presents itself.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The start of every URL the service hands out (`--public-url`); `None` is the address
    /// the listener is bound to.
    pub public_url: Option<String>,
    /// Where to die, for crash tests (`BILLSTREAM_DIE_AFTER`); `None` in service.
    pub death: Option<DeathPlan>,
    /// How often an idle portal stream sends a heartbeat; `None` is every 15 s.
    pub stream_heartbeat: Option<Duration>,
}

/// Serves the app on `listener` until `shutdown` resolves, then finishes the requests in
/// flight and stops the log's consumers before returning.
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, pool, ServeOptions::default(), shutdown).await
}

/// [`serve`], as `options` say.
pub async fn serve_with(
    listener: TcpListener,
    pool: PgPool,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let public_url = match options.public_url {
        Some(url) => url,
        None => format!("http://{}", listener.local_addr()?),
    };
    let mut app = App::new(pool).with_public_url(&public_url);
    if let Some(death) = options.death {
        app = app.with_death(death);
    }
    if let Some(heartbeat) = options.stream_heartbeat {
        app = app.with_stream_heartbeat(heartbeat);
    }
    app.spawn_idempotency_expiry();
    // Flows that an instance killed midway left unfinished (this one, before a restart,
    // included) are finished from here.
    app.spawn_flow_resumer();
    // Test clocks go on where they were before the first request; then the billing work due
    // by each tenant's clock is done by this instance while it owns the scheduler.
    if let Err(e) = app.load_test_clocks().await {
        tracing::warn!(error = %e, "cannot load the test clocks; retrying every second");
    }
    app.spawn_test_clock_reload();
    app.spawn_scheduler();
    let (reactions, app) = Reactions::start(app);
    let router = router(app);

    // HTTP/1 only: telling HTTP/2's preface apart means reading before any timeout is armed,
    // and a client that connects and says nothing would be held forever.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections: closing a new one");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let router = router.clone();
        let graceful_watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper arms its header timeout once a request has begun: a client that connects
            // and never sends a byte is closed here instead.
            let mut first = [0u8; 1];
            let peeked = tokio::time::timeout(HEADER_READ_TIMEOUT, stream.peek(&mut first)).await;
            if !matches!(peeked, Ok(Ok(n)) if n > 0) {
                drop(slot);
                return;
            }
            serve_connection(stream, peer, router, &builder, graceful_watcher).await;
            drop(slot);
        });
    }

    drop(listener);
    tracing::info!("shutting down: finishing requests in flight");
    // Live streams never finish by themselves: they end here, and their pages reconnect.
    reactions.end_portal_streams();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period: letting them go");
    }
    reactions.stop().await;
    Ok(())
}

/// Serves one connection to its end: each request carries its peer's address, which failed
/// authentication is counted by.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    builder: &Builder<TokioExecutor>,
    graceful: hyper_util::server::graceful::Watcher,
) {
    let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
        request
            .extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer));
        request
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    if let Err(e) = graceful.watch(connection.into_owned()).await {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
