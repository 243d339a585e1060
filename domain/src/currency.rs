use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code that passed [`Currency::parse`]: three ASCII letters, uppercase.
/// Only the shape is checked: a list of codes would need updating whenever ISO adds one, and
/// the payment provider refuses a code it does not know anyway.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Currency(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Currency must be a three-letter ISO 4217 code")]
pub struct InvalidCurrency;

impl Currency {
    /// Surrounding whitespace is trimmed and the letters uppercased, so `" usd"` is `USD`.
    pub fn parse(raw: &str) -> Result<Currency, InvalidCurrency> {
        let value = raw.trim();
        if value.len() == 3 && value.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Currency(value.to_ascii_uppercase()))
        } else {
            Err(InvalidCurrency)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_letters_parse_uppercased() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert_eq!(Currency::parse(" Eur ").unwrap().as_str(), "EUR");
    }

    #[test]
    fn anything_but_three_letters_is_invalid() {
        for bad in ["", "US", "USDT", "U$D", "12A", "ÜSD", "U D"] {
            assert_eq!(Currency::parse(bad), Err(InvalidCurrency), "{bad}");
        }
    }
}
