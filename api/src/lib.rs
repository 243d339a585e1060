//! billstream's HTTP layer: a thin axum app over the application layer (`app`).
//!
//! A request flows: request id → trace span → `/v1` auth (`auth.rs`, asking the app who the
//! credential is) → idempotency (`idempotency.rs`) → a handler in `routes/` that parses the
//! request, calls one use-case of [`app::App`] and maps its answer, or its `AppError` through
//! `ApiError` (`error.rs`).

pub mod auth;
pub mod control_characters;
pub mod error;
pub mod extract;
pub mod failed_auth;
pub mod idempotency;
pub mod openapi;
pub mod pagination;
pub mod payment_body;
pub mod portal_page;
pub mod progress;
pub mod request_ids;
pub mod responses;
pub mod routes;
pub mod server;
pub mod streamed_list;
pub mod telemetry;

/// Merchants and their keys, as the CLI makes them.
pub use app::merchants;
/// The state every handler reaches: the application.
pub use app::App as AppState;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::ApiError;

/// How long a request's body may take to arrive in full.
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The whole application as a router, ready to serve.
pub fn router(app: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static(request_ids::HEADER);
    Router::new()
        .merge(routes::public())
        .merge(portal_page::router())
        .merge(routes::v1(
            app.clone(),
            auth::Gate {
                app: app.clone(),
                failed: failed_auth::FailedAuth::default(),
            },
        ))
        .fallback(|| async { ApiError::for_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async {
            ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_request(screen_request))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::request_span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::internal("Internal server error", "handler panicked").into_response()
                }))
                .layer(axum::middleware::map_response(json_errors))
                // A body must keep arriving: one that stalls is cut off, and its request refused.
                .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
                .layer(DefaultBodyLimit::max(idempotency::MAX_BODY)),
        )
        .with_state(app)
}

/// Before anything else looks at a request: an unusable request id is dropped (the id layer
/// then assigns one), and a query with a control character is refused. One middleware for both,
/// since every request pays for each layer.
async fn screen_request(mut request: Request) -> Result<Request, Response> {
    request_ids::drop_unusable(request.headers_mut());
    if control_characters::in_query(request.uri()) {
        return Err(ApiError::bad_request(control_characters::IN_QUERY).into_response());
    }
    Ok(request)
}

/// Makes sure no error leaves without a JSON body: axum's own rejections (a body over the
/// limit, say) answer plain text, which callers of a JSON API should never have to parse.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json_or_page = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // The portal page's own error pages are HTML for a person, and pass as they are.
    if (status.is_client_error() || status.is_server_error()) && !is_json_or_page {
        let mut replacement = ApiError::for_status(status).into_response();
        if let Some(allow) = response.headers().get(axum::http::header::ALLOW) {
            replacement
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow.clone());
        }
        return replacement;
    }
    response
}
