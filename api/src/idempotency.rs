//! `Idempotency-Key` on POST and DELETE, as middleware: the request is hashed and run once; the
//! rules (claims, replays, retention) are the app's (`app::idempotency`).

use app::idempotency::{check_key, request_hash, KeyClaim};
use app::{App, AppError, Principal};
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub const HEADER: &str = "idempotency-key";
const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_BODY: usize = 1024 * 1024;
pub async fn replay_by_key(State(app): State<App>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::DELETE) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(HEADER).cloned() else {
        return next.run(request).await;
    };
    match run_once(app, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run_once(
    app: App,
    key: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let key = key
        .to_str()
        .map_err(|_| AppError::invalid("Idempotency-Key must be 1 to 255 visible ASCII characters"))
        .and_then(|key| check_key(key).map(|()| key.to_owned()))
        .map_err(|e| ApiError::from(e).into_response())?;
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("Missing API key").into_response())?;

    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response())?;
    let hash = request_hash(
        parts.method.as_str(),
        parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
        &body,
    );
    // From the claim on, the keyed request runs to its end on a task of its own, detached
    // from the connection: a client that hangs up (or times out) mid-request cancels nothing,
    // and the response is stored for its retry. Cancelled after its claim, the request would
    // have left its key held, its effects perhaps committed, and the retry would have been
    // turned away, then (a minute later) run again.
    let request = Request::from_parts(parts, Body::from(body));
    tokio::spawn(run_claimed(app, principal, key, hash, request, next))
        .await
        .map_err(|e| ApiError::internal("Internal server error", e).into_response())?
}

/// Claims the key, then runs the request and stores its response, or replays the response
/// stored for it.
async fn run_claimed(
    app: App,
    principal: Principal,
    key: String,
    hash: Vec<u8>,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let fail = |e: AppError| ApiError::from(e).into_response();
    let flow = match app
        .claim_idempotency_key(&principal, &key, &hash)
        .await
        .map_err(fail)?
    {
        KeyClaim::Replay { status, body } => return Err(replay(status, body)),
        KeyClaim::Run { flow } => flow,
    };
    let mut request = request;
    request.extensions_mut().insert(flow);
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .unwrap_or_else(|_| Bytes::new());
    app.finish_idempotent(&principal, &key, parts.status.as_u16(), &body)
        .await
        .map_err(fail)?;
    let mut response = Response::from_parts(parts, Body::from(body));
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("false"));
    Ok(response)
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}
