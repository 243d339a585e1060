//! Prefixed identifiers (`cust_…`). New ids are a UUIDv7 in hex, so ids sort in creation order
//! and keyset pagination by id lists oldest first.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
}

/// The longest id we accept; anything longer is certainly not ours.
const MAX_ID_LEN: usize = 64;

/// True when `value` is `prefix` followed by 1 to 64 ASCII letters, digits or underscores.
fn is_valid(prefix: &str, value: &str) -> bool {
    value.len() <= MAX_ID_LEN
        && value.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn generate(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    pub const PREFIX: &'static str = "cust_";

    pub fn generate() -> Self {
        Self(generate(Self::PREFIX))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        if is_valid(Self::PREFIX, value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidId { kind: "customer" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_customer_ids_parse_back() {
        let id = CustomerId::generate();
        assert_eq!(CustomerId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn customer_ids_need_their_prefix_and_plain_characters() {
        assert!(CustomerId::parse("cust_stable_123").is_ok());
        assert!(CustomerId::parse("pm_123").is_err());
        assert!(CustomerId::parse("cust_").is_err());
        assert!(CustomerId::parse("cust_a'b").is_err());
        assert!(CustomerId::parse(&format!("cust_{}", "a".repeat(80))).is_err());
    }
}
