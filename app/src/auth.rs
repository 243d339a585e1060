//! Who a bearer credential is: a secret key names one merchant and one mode, the tenant every
//! use-case works in; a portal session token (`ps_…`) reaches one customer of one tenant.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use projections::tables::{api_keys, portal_sessions};
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::error::AppError;
use crate::principal::{PortalSession, Principal};

/// How long a looked-up key is trusted without asking the database again.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

pub const INVALID_KEY: &str = "Invalid API key";
pub const INVALID_SESSION: &str = "Invalid or expired portal session";

/// A key's principal and when it was looked up, by the key's hash.
type CachedKeys = HashMap<Vec<u8>, (Principal, Instant)>;

/// Known keys by hash: every request authenticates, and most should not cost a query.
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<RwLock<CachedKeys>>,
}

/// Keys and tokens are random (256 bits): a fast hash is as good as a slow one, and lets
/// every request look its key up.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl App {
    /// The principal of a secret key (`sk_test_…`, `sk_live_…`).
    pub async fn authenticate_key(&self, secret: &str) -> Result<Principal, AppError> {
        if !(secret.starts_with("sk_test_") || secret.starts_with("sk_live_")) {
            return Err(AppError::unauthorized(INVALID_KEY));
        }
        let hash = hash_secret(secret);
        if let Some((principal, at)) = self
            .keys
            .entries
            .read()
            .ok()
            .and_then(|e| e.get(&hash).cloned())
        {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(principal);
            }
        }
        let key = api_keys::by_hash(&self.pool, &hash)
            .await?
            .ok_or_else(|| AppError::unauthorized(INVALID_KEY))?;
        let principal = Principal {
            tenant: key.tenant,
            key_id: key.id,
            session: None,
        };
        if let Ok(mut entries) = self.keys.entries.write() {
            entries.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(principal)
    }

    /// The principal of a secret key or of a portal session token that has not expired.
    pub async fn authenticate_key_or_session(&self, secret: &str) -> Result<Principal, AppError> {
        if !secret.starts_with("ps_") {
            return self.authenticate_key(secret).await;
        }
        let session = portal_sessions::live(&self.pool, &hash_secret(secret), self.clock.now())
            .await?
            .ok_or_else(|| AppError::unauthorized(INVALID_SESSION))?;
        Ok(Principal {
            tenant: session.tenant,
            key_id: format!("portal_session:{}", session.id),
            session: Some(PortalSession {
                id: session.id,
                customer_id: session.customer_id,
                external_customer_id: session.external_customer_id,
            }),
        })
    }
}
