use std::future::Future;

use app::reactions::Reactions;
use app::App;
use projections::database::PgPool;
use tokio::net::TcpListener;

use crate::router;

/// How the service presents itself.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The start of every URL the service hands out (`--public-url`); `None` is the address
    /// the listener is bound to.
    pub public_url: Option<String>,
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
    let app = App::new(pool).with_public_url(&public_url);
    app.spawn_idempotency_expiry();
    let (reactions, app) = Reactions::start(app);
    // Connections carry their peer's address, which failed authentication is counted by.
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    reactions.stop().await;
    served
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
    tracing::info!("shutting down: finishing requests in flight");
}
