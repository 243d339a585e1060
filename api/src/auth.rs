//! Bearer authentication middleware: the app says who a credential is; the [`Principal`] is left
//! in the request's extensions for the handler's extractors (`extract.rs`). Failed attempts are
//! counted per client address (`failed_auth.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use app::{App, AppError, Principal};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::failed_auth::{FailedAuth, UNKNOWN_ADDRESS};

const MISSING_KEY: &str = "Missing API key: send Authorization: Bearer <secret key>";
const TOO_MANY: &str = "Too many failed authentication attempts from this address; retry later";

/// What the authentication middleware needs: the app, and the failures counted so far.
#[derive(Clone)]
pub struct Gate {
    pub app: App,
    pub failed: FailedAuth,
}

/// Which credentials a route takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accepts {
    SecretKey,
    SecretKeyOrSession,
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// 429 with `Retry-After` in whole seconds, at least one.
fn too_many(wait: Duration) -> Response {
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", TOO_MANY).into_response();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

async fn authenticate(gate: Gate, accepts: Accepts, mut request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN_ADDRESS, |info| info.0.ip());
    let Some(secret) = bearer(&request) else {
        return ApiError::unauthorized(MISSING_KEY).into_response();
    };
    // A key known good goes through whatever its address did; anything else from an address
    // out of its budget is refused before it is looked at, valid or not.
    let principal = match gate.app.known_key(secret) {
        Some(principal) => Ok(principal),
        None => {
            if let Some(wait) = gate.failed.blocked_for(address) {
                return too_many(wait);
            }
            match accepts {
                Accepts::SecretKey => gate.app.authenticate_key(secret).await,
                Accepts::SecretKeyOrSession => gate.app.authenticate_key_or_session(secret).await,
            }
        }
    };
    match principal {
        Ok(principal) => {
            request.extensions_mut().insert::<Principal>(principal);
            next.run(request).await
        }
        Err(e @ AppError::Unauthorized(_)) => match gate.failed.failed(address) {
            Some(wait) => too_many(wait),
            None => ApiError::from(e).into_response(),
        },
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// For the merchant's `/v1` routes: 401 unless the request carries a known secret key.
pub async fn require_secret_key(
    State(gate): State<Gate>,
    request: Request,
    next: Next,
) -> Response {
    authenticate(gate, Accepts::SecretKey, request, next).await
}

/// For the portal routes: a secret key, or a portal session token.
pub async fn require_key_or_session(
    State(gate): State<Gate>,
    request: Request,
    next: Next,
) -> Response {
    authenticate(gate, Accepts::SecretKeyOrSession, request, next).await
}
