//! Who a bearer credential is: a secret key names one merchant and one mode, the tenant every
//! use-case works in; a portal session token (`ps_…`) reaches one customer of one tenant.

use projections::tables::{api_keys, portal_sessions};
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::error::AppError;
use crate::principal::Principal;

pub const INVALID_KEY: &str = "Invalid API key";
pub const INVALID_SESSION: &str = "Invalid or expired portal session";

/// Keys and tokens are random (256 bits): a fast hash is as good as a slow one, and lets
/// every request look its key up.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

impl App {
    /// The principal of a secret key looked up (and found) within the last minute, without
    /// asking the database: a key known good.
    pub fn known_key(&self, secret: &str) -> Option<Principal> {
        self.keys.get(&hash_secret(secret))
    }

    /// The principal of a secret key (`sk_test_…`, `sk_live_…`).
    pub async fn authenticate_key(&self, secret: &str) -> Result<Principal, AppError> {
        if !(secret.starts_with("sk_test_") || secret.starts_with("sk_live_")) {
            return Err(AppError::unauthorized(INVALID_KEY));
        }
        let hash = hash_secret(secret);
        if let Some(principal) = self.keys.get(&hash) {
            return Ok(principal);
        }
        let key = api_keys::by_hash(&self.pool, &hash)
            .await?
            .ok_or_else(|| AppError::unauthorized(INVALID_KEY))?;
        let principal = Principal {
            tenant: key.tenant,
            key_id: key.id,
            session: None,
        };
        self.keys.insert(hash, principal.clone());
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
        Ok(Principal::of_session(session))
    }
}
