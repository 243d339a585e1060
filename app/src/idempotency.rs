//! `Idempotency-Key`: the first response to a key is kept (per caller, at least 24 hours) and
//! a retry with the same request gets it back without running again; the same key with a
//! different request is refused. The HTTP layer hashes the request and carries the response;
//! the rules are here.
//!
//! Stored responses hold secrets (a portal session's token, a setup intent's client secret),
//! so nothing is stored in clear: the key is kept as its SHA-256, and the response is sealed
//! (ChaCha20-Poly1305) with a key derived from the Idempotency-Key itself, which only the
//! caller holds. A copy of the table reveals neither.

use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use projections::tables::idempotency_keys;
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::error::AppError;
use crate::flows::FlowRun;
use crate::instance::Instance;
use crate::principal::Principal;

pub const MAX_KEY_LEN: usize = 255;
/// How long responses are kept: the promise is at least 24 hours.
pub const RETENTION: Duration = Duration::from_secs(25 * 60 * 60);

/// What a key allows a request.
#[derive(Debug, Clone)]
pub enum KeyClaim {
    /// Run the request as `flow` (put it in the commands' metadata), then
    /// [`App::finish_idempotent`]. A `resuming` flow is the key's request run again after a
    /// run that died or failed midway: what that run did is not done twice.
    Run { flow: FlowRun },
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

/// Bytes of the random nonce in front of a sealed response.
const NONCE_LEN: usize = 12;

/// The key as stored: its SHA-256 in hex, so the table does not hold the caller's key.
fn stored_key(key: &str) -> String {
    Sha256::digest(format!("billstream.idempotency-key:{key}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cipher that seals the responses of `key`: its key is derived from the caller's key.
fn cipher(key: &str) -> ChaCha20Poly1305 {
    let derived = Sha256::digest(format!("billstream.idempotency-response:{key}"));
    ChaCha20Poly1305::new(Key::from_slice(&derived))
}

fn seal(key: &str, body: &[u8]) -> Result<Vec<u8>, AppError> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let sealed = cipher(key)
        .encrypt(Nonce::from_slice(&nonce), body)
        .map_err(|e| AppError::internal("Internal server error", e))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

fn open(key: &str, stored: &[u8]) -> Result<Vec<u8>, AppError> {
    let (nonce, sealed) = stored.split_at_checked(NONCE_LEN).ok_or_else(|| {
        AppError::internal("Internal server error", "a stored response too short")
    })?;
    cipher(key)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|e| AppError::internal("Internal server error", e))
}

impl App {
    /// Claims `key` of the caller for a request with `hash`.
    ///
    /// A key whose request has no response yet is in flight while the instance running it
    /// lives; once that instance is gone (killed midway) or let go of it (it failed on our
    /// side), the retry takes the key over and runs the request again as a resumed flow, which
    /// skips what the first run did and answers as the request would have. No timer decides.
    pub async fn claim_idempotency_key(
        &self,
        principal: &Principal,
        key: &str,
        hash: &[u8],
    ) -> Result<KeyClaim, AppError> {
        let scope = principal.idempotency_scope();
        let stored_key = stored_key(key);
        let holder = self.instance.key(&self.pool).await?;
        let run = |claimed_ms: i64, resuming: bool| KeyClaim::Run {
            flow: FlowRun::keyed(
                &scope,
                &stored_key,
                u64::try_from(claimed_ms).unwrap_or(0),
                resuming,
                self,
            ),
        };
        if let Some(claimed_ms) =
            idempotency_keys::claim_new(&self.pool, &scope, &stored_key, hash, holder).await?
        {
            return Ok(run(claimed_ms, false));
        }
        let in_flight = || AppError::Conflict {
            code: "idempotency_key_in_flight",
            message: "A request with this Idempotency-Key is still being processed; retry later"
                .into(),
        };
        let Some(stored) = idempotency_keys::stored(&self.pool, &scope, &stored_key).await? else {
            // Expired meanwhile: the caller may simply retry.
            return Err(in_flight());
        };
        if stored.request_hash != hash {
            return Err(AppError::Conflict {
                code: "idempotency_key_reused",
                message: "This Idempotency-Key was already used with a different request".into(),
            });
        }
        if let (Some(status), Some(body)) = (stored.status_code, &stored.response_body) {
            return Ok(KeyClaim::Replay {
                status: u16::try_from(status).unwrap_or(200),
                body: open(key, body)?,
            });
        }
        if stored.holder == Some(holder) || Instance::is_alive(&self.pool, stored.holder).await? {
            return Err(in_flight());
        }
        if idempotency_keys::take_over(&self.pool, &scope, &stored_key, stored.holder, holder)
            .await?
        {
            Ok(run(stored.claimed_ms, true))
        } else {
            Err(in_flight())
        }
    }

    /// Records how the request of a claimed key ended. After a server error the key is let go
    /// without a response: its retry runs the request again, as a resumed flow. Anything else
    /// is kept and replayed.
    pub async fn finish_idempotent(
        &self,
        principal: &Principal,
        key: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), AppError> {
        let scope = principal.idempotency_scope();
        let stored_key = stored_key(key);
        if (500..600).contains(&status) {
            let holder = self.instance.key(&self.pool).await?;
            idempotency_keys::release(&self.pool, &scope, &stored_key, holder).await?;
        } else {
            let sealed = seal(key, body)?;
            idempotency_keys::store_response(&self.pool, &scope, &stored_key, status, &sealed)
                .await?;
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
