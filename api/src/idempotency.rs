//! `Idempotency-Key` on POST and DELETE: the first response to a key is kept (per tenant, at
//! least 24 hours) and a retry with the same request gets it back without running again.
//! The same key with a different request is a 409.

use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;
pub const MAX_BODY: usize = 1024 * 1024;
/// A request holding a key this long without finishing is presumed dead (its process was
/// killed); a retry may then take the key over.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// How long responses are kept: the promise is at least 24 hours.
pub const RETENTION: Duration = Duration::from_secs(25 * 60 * 60);

/// A key's row: the request's hash, then the response once there is one.
type StoredRequest = (Vec<u8>, Option<i32>, Option<Vec<u8>>);

pub async fn replay_by_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !matches!(*request.method(), Method::POST | Method::DELETE) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(HEADER).cloned() else {
        return next.run(request).await;
    };
    match run_once(state, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run_once(
    state: AppState,
    key: HeaderValue,
    request: Request,
    next: Next,
) -> Result<Response, Response> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .into_response()
        })?
        .to_owned();
    let tenant = request
        .extensions()
        .get::<Principal>()
        .map(|p| p.tenant.key())
        .ok_or_else(|| ApiError::unauthorized("Missing API key").into_response())?;

    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE).into_response())?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""));
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = hasher.finalize().to_vec();

    let db = |e: sqlx::Error| ApiError::from(e).into_response();
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (tenant, key, request_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant, key) DO UPDATE SET created_at = now() \
           WHERE idempotency_keys.status_code IS NULL \
             AND idempotency_keys.request_hash = EXCLUDED.request_hash \
             AND idempotency_keys.created_at < now() - make_interval(secs => $4) \
         RETURNING 1",
    )
    .bind(&tenant)
    .bind(&key)
    .bind(&request_hash)
    .bind(ABANDONED_AFTER.as_secs_f64())
    .fetch_optional(&state.pool)
    .await
    .map_err(db)?;

    if claimed.is_none() {
        let stored: Option<StoredRequest> = sqlx::query_as(
            "SELECT request_hash, status_code, response_body FROM idempotency_keys \
             WHERE tenant = $1 AND key = $2",
        )
        .bind(&tenant)
        .bind(&key)
        .fetch_optional(&state.pool)
        .await
        .map_err(db)?;
        return Err(match stored {
            Some((hash, _, _)) if hash != request_hash => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request",
            )
            .into_response(),
            Some((_, Some(status), Some(body))) => replay(status, body),
            _ => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "A request with this Idempotency-Key is still being processed; retry later",
            )
            .into_response(),
        });
    }

    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .unwrap_or_else(|_| Bytes::new());
    if parts.status.is_server_error() {
        // Nothing was done that a retry must not repeat: free the key for it.
        sqlx::query("DELETE FROM idempotency_keys WHERE tenant = $1 AND key = $2")
            .bind(&tenant)
            .bind(&key)
            .execute(&state.pool)
            .await
            .map_err(db)?;
    } else {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $3, response_body = $4 \
             WHERE tenant = $1 AND key = $2",
        )
        .bind(&tenant)
        .bind(&key)
        .bind(i32::from(parts.status.as_u16()))
        .bind(body.to_vec())
        .execute(&state.pool)
        .await
        .map_err(db)?;
    }
    let mut response = Response::from_parts(parts, Body::from(body));
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("false"));
    Ok(response)
}

fn replay(status: i32, body: Vec<u8>) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// Forgets responses older than [`RETENTION`], every hour, until the process ends.
pub fn spawn_expiry(pool: sqlx::PgPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60 * 60));
        loop {
            tick.tick().await;
            let result = sqlx::query(
                "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            )
            .bind(RETENTION.as_secs_f64())
            .execute(&pool)
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not expire idempotency keys");
            }
        }
    });
}
