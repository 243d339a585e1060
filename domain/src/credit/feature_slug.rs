use std::fmt;

use serde::{Deserialize, Serialize};

use crate::credit::CreditError;

/// The longest feature slug, in characters.
const MAX_SLUG_CHARS: usize = 64;

/// A feature's slug as plans and usage name it (`api_calls`): lowercase letters, digits,
/// underscores and hyphens, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FeatureSlug(String);

impl FeatureSlug {
    pub fn parse(raw: &str) -> Result<FeatureSlug, CreditError> {
        let valid = raw.len() <= MAX_SLUG_CHARS
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(FeatureSlug(raw.to_owned()))
        } else {
            Err(CreditError::InvalidFeatureSlug)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FeatureSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
