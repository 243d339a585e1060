//! Bearer authentication for `/v1`: a secret key names one merchant and one mode, the tenant
//! every handler works in. The portal endpoints also take a portal session token (`ps_…`),
//! which reaches one customer of one tenant.

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

/// Who is calling: the tenant, who acts for it (a key's id or a portal session's), and, for a
/// portal session, the one customer it may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: Tenant,
    pub key_id: String,
    pub session: Option<PortalSession>,
}

/// The customer a portal session was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    pub id: String,
    pub customer_id: String,
    pub external_customer_id: String,
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
            session: None,
        };
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(Some(principal))
    }
}

fn bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

const MISSING_KEY: &str = "Missing API key: send Authorization: Bearer <secret key>";

async fn secret_key_principal(state: &AppState, secret: &str) -> Result<Principal, ApiError> {
    if !(secret.starts_with("sk_test_") || secret.starts_with("sk_live_")) {
        return Err(ApiError::unauthorized("Invalid API key"));
    }
    state
        .keys
        .principal(&state.pool, secret)
        .await?
        .ok_or_else(|| ApiError::unauthorized("Invalid API key"))
}

/// The principal of a portal session token that has not expired.
async fn session_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, tenant, customer_id, external_customer_id FROM portal_sessions \
         WHERE token_hash = $1 AND expires_at > now()",
    )
    .bind(hash_secret(token))
    .fetch_optional(&state.pool)
    .await?;
    let (id, tenant, customer_id, external_customer_id) =
        row.ok_or_else(|| ApiError::unauthorized("Invalid or expired portal session"))?;
    let tenant = Tenant::from_key(&tenant)
        .ok_or_else(|| ApiError::internal("Internal server error", "malformed session tenant"))?;
    Ok(Principal {
        tenant,
        key_id: format!("portal_session:{id}"),
        session: Some(PortalSession {
            id,
            customer_id,
            external_customer_id,
        }),
    })
}

/// Middleware for the merchant's `/v1` routes: answers 401 unless the request carries a
/// known secret key, and leaves the [`Principal`] in the request's extensions.
pub async fn require_secret_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(secret) = bearer(&request) else {
        return ApiError::unauthorized(MISSING_KEY).into_response();
    };
    match secret_key_principal(&state, secret).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Middleware for the portal routes: a secret key, or a portal session token.
pub async fn require_key_or_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(secret) = bearer(&request) else {
        return ApiError::unauthorized(MISSING_KEY).into_response();
    };
    let principal = if secret.starts_with("ps_") {
        session_principal(&state, secret).await
    } else {
        secret_key_principal(&state, secret).await
    };
    match principal {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
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
