//! Bearer-key authentication for `/v1`: the key names one merchant and one mode, the tenant
//! every handler works in.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::tenant::{Mode, Tenant};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::merchants::hash_secret;
use crate::state::AppState;

/// Who is calling: the tenant and the key that acts for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: Tenant,
    pub key_id: String,
}

/// How long a looked-up key is trusted without asking the database again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// A key's principal and when it was looked up, by the key's hash.
type CachedKeys = HashMap<Vec<u8>, (Principal, Instant)>;

/// Known keys by hash: every request authenticates, and most should not cost a query.
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<RwLock<CachedKeys>>,
}

impl KeyCache {
    async fn principal(&self, pool: &PgPool, secret: &str) -> Result<Option<Principal>, ApiError> {
        let hash = hash_secret(secret);
        if let Some((principal, at)) = self.entries.read().ok().and_then(|e| e.get(&hash).cloned())
        {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(Some(principal));
            }
        }
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT id, merchant_id, mode FROM api_keys WHERE secret_hash = $1")
                .bind(&hash)
                .fetch_optional(pool)
                .await?;
        let Some((key_id, merchant_id, mode)) = row else {
            return Ok(None);
        };
        let Some(mode) = Mode::parse(&mode) else {
            return Ok(None);
        };
        let principal = Principal {
            tenant: Tenant::new(merchant_id, mode),
            key_id,
        };
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(Some(principal))
    }
}

/// Middleware for `/v1`: answers 401 unless the request carries a known secret key, and
/// leaves the [`Principal`] in the request's extensions.
pub async fn require_secret_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let secret = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(secret) = secret else {
        return ApiError::unauthorized("Missing API key: send Authorization: Bearer <secret key>")
            .into_response();
    };
    if !(secret.starts_with("sk_test_") || secret.starts_with("sk_live_")) {
        return ApiError::unauthorized("Invalid API key").into_response();
    }
    match state.keys.principal(&state.pool, secret).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => ApiError::unauthorized("Invalid API key").into_response(),
        Err(e) => e.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Missing API key"))
    }
}
