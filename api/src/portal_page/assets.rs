//! The page's stylesheet and script, and the merchant's embed snippet: compiled into the binary,
//! so a fresh machine serves the portal with no build step and no Node.js.
//!
//! The page links each file with a `?v=` of its contents' hash, so a browser may keep it for a
//! year and still gets the new one the moment a new binary serves a changed file.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const CSS: &str = include_str!("../../assets/portal/portal.css");
pub const JS: &str = include_str!("../../assets/portal/portal.js");
const EMBED: &str = include_str!("../../assets/portal/embed.js");

/// The stylesheet's URL, versioned by its contents.
pub static CSS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/portal/assets/portal.css?v={}", version(CSS)));
/// The script's URL, versioned by its contents.
pub static JS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/portal/assets/portal.js?v={}", version(JS)));

fn version(contents: &str) -> String {
    let digest = Sha256::digest(contents.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /portal/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "portal.css" => (CSS, "text/css; charset=utf-8"),
        "portal.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return ApiError::for_status(StatusCode::NOT_FOUND).into_response(),
    };
    (
        [
            (CONTENT_TYPE, kind),
            (CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /portal/embed.js`: the merchant's page loads it by a stable URL, so it is cached
/// briefly and revalidated.
pub async fn embed() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        EMBED,
    )
        .into_response()
}
