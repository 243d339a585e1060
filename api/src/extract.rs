//! Extractors whose rejections are `ApiError`s, so bad input gets the same JSON errors as
//! broken rules.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use app::flows::FlowRun;
use app::{CommandMetadata, Principal};

use crate::control_characters;
use crate::error::ApiError;

/// A JSON body. The Content-Type header is not required (curl users forget it); the body must
/// parse, match the expected types and name no unknown field.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::for_status(status)
                } else {
                    ApiError::bad_request("Could not read the request body")
                }
            })?;
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            &b"{}"[..]
        } else {
            &bytes[..]
        };
        if control_characters::in_json_strings(body) {
            return Err(ApiError::bad_request(control_characters::IN_BODY));
        }
        serde_json::from_slice(body)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))
    }
}

/// Query parameters, rejected as a 400 JSON error when they do not parse.
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded_from_str(query)
            .map(QueryParams)
            .map_err(|e| ApiError::bad_request(format!("Invalid query parameters: {e}")))
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(query: &str) -> Result<T, String> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| "malformed query string".to_owned())?,
    )
    .map(|q| q.0)
    .map_err(|e| {
        use std::error::Error;
        e.source()
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string())
    })
}

/// Deserializes a field that may be absent, `null` or a value into
/// `None`, `Some(None)` or `Some(Some(value))`, so an update can tell "leave it" from "clear it".
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// The authenticated caller, which the auth middleware left in the request's extensions.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or_else(|| ApiError::unauthorized("Missing API key"))
    }
}

/// The caller of a writing request with its request id and idempotency key, which every event
/// the request produces records.
pub struct Actor(pub CommandMetadata);

impl<S: Send + Sync> FromRequestParts<S> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Self(CommandMetadata {
            principal,
            request_id: header("x-request-id"),
            // A keyed request runs as the flow its key claimed (`idempotency.rs`).
            flow: parts.extensions.get::<FlowRun>().cloned(),
        }))
    }
}
