use std::fmt;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code that passed [`Currency::parse`]: three ASCII letters, uppercase,
/// on ISO's list (the `iso_currency` crate's). A code no merchant could be paid in ("XYZ")
/// is refused at once rather than by the provider at the first charge. Codes stored before
/// this check read back as they were: deserializing does not parse.
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
        if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(InvalidCurrency);
        }
        let code = value.to_ascii_uppercase();
        match iso_currency::Currency::from_code(&code) {
            Some(_) => Ok(Currency(code)),
            None => Err(InvalidCurrency),
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
    fn iso_codes_parse_uppercased() {
        assert_eq!(Currency::parse("usd").unwrap().as_str(), "USD");
        assert_eq!(Currency::parse(" Eur ").unwrap().as_str(), "EUR");
        for code in ["JPY", "KWD", "CHF", "PLN", "BRL", "XOF"] {
            assert_eq!(Currency::parse(code).unwrap().as_str(), code);
        }
    }

    #[test]
    fn anything_but_a_listed_code_is_invalid() {
        for bad in [
            "", "US", "USDT", "U$D", "12A", "ÜSD", "U D", "XYZ", "ABC", "usx",
        ] {
            assert_eq!(Currency::parse(bad), Err(InvalidCurrency), "{bad}");
        }
    }
}
