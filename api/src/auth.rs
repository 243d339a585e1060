//! Bearer authentication middleware: the app says who a credential is; the [`Principal`] is left
//! in the request's extensions for the handler's extractors (`extract.rs`).

use app::{App, Principal};
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const MISSING_KEY: &str = "Missing API key: send Authorization: Bearer <secret key>";

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

async fn authenticated(
    request: Request,
    next: Next,
    principal: Result<Principal, app::AppError>,
) -> Response {
    let mut request = request;
    match principal {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// For the merchant's `/v1` routes: 401 unless the request carries a known secret key.
pub async fn require_secret_key(State(app): State<App>, request: Request, next: Next) -> Response {
    let Some(secret) = bearer(&request) else {
        return ApiError::unauthorized(MISSING_KEY).into_response();
    };
    let principal = app.authenticate_key(secret).await;
    authenticated(request, next, principal).await
}

/// For the portal routes: a secret key, or a portal session token.
pub async fn require_key_or_session(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Response {
    let Some(secret) = bearer(&request) else {
        return ApiError::unauthorized(MISSING_KEY).into_response();
    };
    let principal = app.authenticate_key_or_session(secret).await;
    authenticated(request, next, principal).await
}
