//! `Idempotency-Key`: the first response to a key is kept (per tenant, at least 24 hours) and a
//! retry with the same request gets it back without running again; the same key with a
//! different request is refused. The HTTP layer hashes the request and carries the response;
//! the rules are here.

use std::time::Duration;

use projections::tables::idempotency_keys;
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::error::AppError;

pub const MAX_KEY_LEN: usize = 255;
/// A request holding a key this long without finishing is presumed dead (its process was
/// killed); a retry may then take the key over.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// How long responses are kept: the promise is at least 24 hours.
pub const RETENTION: Duration = Duration::from_secs(25 * 60 * 60);

/// What a key allows a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// Run the request, then [`App::finish_idempotent`].
    Run,
    /// The request ran before: answer its stored response.
    Replay { status: u16, body: Vec<u8> },
}

/// The hash that tells a retry (same method, path with query, body) from a reuse.
pub fn request_hash(method: &str, path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method);
    hasher.update(b" ");
    hasher.update(path_and_query);
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().to_vec()
}

/// Whether `key` is a key we take: 1 to 255 visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), AppError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(AppError::invalid(
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(())
}

impl App {
    /// Claims `key` of `scope` for a request with `hash`.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        hash: &[u8],
    ) -> Result<KeyClaim, AppError> {
        if idempotency_keys::claim(&self.pool, scope, key, hash, ABANDONED_AFTER).await? {
            return Ok(KeyClaim::Run);
        }
        let stored = idempotency_keys::stored(&self.pool, scope, key).await?;
        match stored {
            Some(stored) if stored.request_hash != hash => Err(AppError::Conflict {
                code: "idempotency_key_reused",
                message: "This Idempotency-Key was already used with a different request".into(),
            }),
            Some(idempotency_keys::StoredRequest {
                status_code: Some(status),
                response_body: Some(body),
                ..
            }) => Ok(KeyClaim::Replay {
                status: u16::try_from(status).unwrap_or(200),
                body,
            }),
            _ => Err(AppError::Conflict {
                code: "idempotency_key_in_flight",
                message:
                    "A request with this Idempotency-Key is still being processed; retry later"
                        .into(),
            }),
        }
    }

    /// Records how the request of a claimed key ended. A server error did nothing a retry must
    /// not repeat: the key is freed for it. Anything else is kept and replayed.
    pub async fn finish_idempotent(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), AppError> {
        if (500..600).contains(&status) {
            idempotency_keys::release(&self.pool, scope, key).await?;
        } else {
            idempotency_keys::store_response(&self.pool, scope, key, status, body).await?;
        }
        Ok(())
    }

    /// Forgets responses older than [`RETENTION`], every hour, until the process ends.
    pub fn spawn_idempotency_expiry(&self) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60 * 60));
            loop {
                tick.tick().await;
                if let Err(e) = idempotency_keys::expire(&pool, RETENTION).await {
                    tracing::warn!(error = %e, "could not expire idempotency keys");
                }
            }
        });
    }
}
