use std::future::Future;

use std::sync::Arc;

use projections::catch_up::CatchUpRunners;
use projections::portal_overview::PortalOverviewProjection;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::{app, idempotency, AppState};

/// Serves the app on `listener` until `shutdown` resolves, then finishes the requests in
/// flight and stops the catch-up projections before returning.
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    idempotency::spawn_expiry(pool.clone());
    let (runners, mut handles) =
        CatchUpRunners::spawn(&pool, vec![Arc::new(PortalOverviewProjection::default())]);
    let portal = handles.remove(0);
    let router = app(AppState::new(pool).with_portal(portal));
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    runners.stop().await;
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
