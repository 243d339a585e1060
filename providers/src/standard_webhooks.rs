//! The Standard Webhooks signature scheme (<https://www.standardwebhooks.com/>), which Dodo
//! Payments uses for its deliveries.
//!
//! A delivery carries `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`,
//! a space-separated list of `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}.{body}"`. The key
//! is the base64 text after the secret's `whsec_` prefix. Several signatures appear while a
//! secret is rotated, so any one matching is enough.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use sha2::Sha256;
use thiserror::Error;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// How far a delivery's timestamp may be from our clock, either way.
pub const TOLERANCE_SECONDS: i64 = 300;

const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StandardWebhookError {
    #[error("the webhook secret is not whsec_ followed by base64")]
    InvalidSecret,
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the webhook-timestamp header is not a unix timestamp")]
    MalformedTimestamp,
    #[error("the webhook-signature header holds no signature")]
    MalformedSignature,
    #[error("no signature in the webhook-signature header matches the payload")]
    SignatureMismatch,
    #[error("the webhook timestamp {timestamp} is more than five minutes old")]
    StaleTimestamp { timestamp: i64 },
    #[error("the webhook timestamp {timestamp} is more than five minutes in the future")]
    FutureTimestamp { timestamp: i64 },
}

/// The three headers of a delivery, each `None` when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

impl<'a> WebhookHeaders<'a> {
    /// Reads the headers from a request (axum's `HeaderMap` is the same type).
    pub fn from_header_map(headers: &'a HeaderMap) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            id: get(ID_HEADER),
            timestamp: get(TIMESTAMP_HEADER),
            signature: get(SIGNATURE_HEADER),
        }
    }
}

/// A delivery whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The sender's message id: the same across retries, so it is the deduplication key.
    pub id: String,
    pub timestamp: i64,
}

/// An endpoint's signing key, parsed once from its `whsec_…` form.
#[derive(Clone, PartialEq, Eq)]
pub struct StandardWebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for StandardWebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandardWebhookSecret(..)")
    }
}

impl StandardWebhookSecret {
    /// Parses `whsec_<base64>`; the prefix is optional, as in the reference libraries.
    pub fn parse(secret: &str) -> Result<Self, StandardWebhookError> {
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let key = BASE64
            .decode(encoded)
            .map_err(|_| StandardWebhookError::InvalidSecret)?;
        if key.is_empty() {
            return Err(StandardWebhookError::InvalidSecret);
        }
        Ok(Self { key })
    }

    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// The `whsec_…` text a provider's dashboard would show for this key.
    pub fn to_whsec(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.key))
    }

    /// Checks that `body` was signed with this secret within the tolerance of `now`.
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook, StandardWebhookError> {
        let id = headers
            .id
            .ok_or(StandardWebhookError::MissingHeader(ID_HEADER))?;
        let timestamp_text = headers
            .timestamp
            .ok_or(StandardWebhookError::MissingHeader(TIMESTAMP_HEADER))?;
        let signature_header = headers
            .signature
            .ok_or(StandardWebhookError::MissingHeader(SIGNATURE_HEADER))?;
        let timestamp = timestamp_text
            .trim()
            .parse::<i64>()
            .map_err(|_| StandardWebhookError::MalformedTimestamp)?;

        let entries: Vec<(&str, &str)> = signature_header
            .split(' ')
            .filter_map(|entry| entry.split_once(','))
            .collect();
        if entries.is_empty() {
            return Err(StandardWebhookError::MalformedSignature);
        }

        // Like the reference libraries, sign over the parsed number, not the raw header text.
        let mac = self.signed_content_mac(id, &timestamp.to_string(), body);
        // `verify_slice` compares in constant time, so a forger learns nothing from our timing.
        let matched = entries
            .iter()
            // Other versions (`v1a` asymmetric signatures, future ones) are not ours to check.
            .filter(|(version, _)| *version == "v1")
            .filter_map(|(_, sig)| BASE64.decode(sig).ok())
            .any(|sig| mac.clone().verify_slice(&sig).is_ok());
        if !matched {
            return Err(StandardWebhookError::SignatureMismatch);
        }

        let age = i128::from(now.timestamp()) - i128::from(timestamp);
        if age > i128::from(TOLERANCE_SECONDS) {
            return Err(StandardWebhookError::StaleTimestamp { timestamp });
        }
        if -age > i128::from(TOLERANCE_SECONDS) {
            return Err(StandardWebhookError::FutureTimestamp { timestamp });
        }
        Ok(VerifiedWebhook {
            id: id.to_owned(),
            timestamp,
        })
    }

    /// The `webhook-signature` value a sender would attach; for tests and fakes.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signature = self
            .signed_content_mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1,{}", BASE64.encode(signature))
    }

    fn signed_content_mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // The example from the Standard Webhooks specification, recomputed independently.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn secret() -> StandardWebhookSecret {
        StandardWebhookSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn signing_matches_the_specification_example() {
        assert_eq!(secret().sign(ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn the_specification_example_verifies() {
        let headers = WebhookHeaders {
            id: Some(ID),
            timestamp: Some("1614265330"),
            signature: Some(SIGNATURE),
        };
        let now = Utc.timestamp_opt(TIMESTAMP + 10, 0).unwrap();
        let verified = secret().verify(&headers, BODY, now).unwrap();
        assert_eq!(verified.id, ID);
        assert_eq!(verified.timestamp, TIMESTAMP);
    }

    #[test]
    fn the_whsec_prefix_is_optional_and_round_trips() {
        let bare = StandardWebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(bare, secret());
        assert_eq!(secret().to_whsec(), SECRET);
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        assert_eq!(
            StandardWebhookSecret::parse("whsec_not base64!"),
            Err(StandardWebhookError::InvalidSecret)
        );
        assert_eq!(
            StandardWebhookSecret::parse("whsec_"),
            Err(StandardWebhookError::InvalidSecret)
        );
    }

    #[test]
    fn headers_are_read_from_a_header_map() {
        let mut map = HeaderMap::new();
        map.insert(ID_HEADER, ID.parse().unwrap());
        map.insert(TIMESTAMP_HEADER, "1614265330".parse().unwrap());
        let headers = WebhookHeaders::from_header_map(&map);
        assert_eq!(headers.id, Some(ID));
        assert_eq!(headers.timestamp, Some("1614265330"));
        assert_eq!(headers.signature, None);
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(format!("{:?}", secret()), "StandardWebhookSecret(..)");
    }
}
