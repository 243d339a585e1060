//! The built-in `sandbox` provider's card check.
//!
//! The sandbox lets a merchant develop against billstream without a real provider account, so it
//! behaves like one where a developer would notice: numbers must look like real card numbers
//! (Luhn), expired cards are refused, and Stripe's well-known decline card is declined.
//!
//! Test cards, as Stripe's test cards behave:
//!
//! | Number             | Adding the card | Charging it ([`crate::gateway::SandboxGateway`]) |
//! |--------------------|-----------------|---------------------------------------------------|
//! | `4242424242424242` | added           | succeeds                                          |
//! | `4000000000000002` | declined        | —                                                 |
//! | `4000000000000341` | added           | declined: `card_declined`                         |
//! | `4000000000009995` | added           | declined: `insufficient_funds`                    |
//!
//! The sandbox keeps only a card's last four digits, so charges decide by those: any card ending
//! in `0341` or `9995` is declined as above, every other card is charged.

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use thiserror::Error;

/// Stripe's test card that always declines; developers already know it.
pub const DECLINED_CARD_NUMBER: &str = "4000000000000002";

/// Stripe's test card that is added but whose charges are declined (`card_declined`).
pub const CHARGE_DECLINED_CARD_NUMBER: &str = "4000000000000341";

/// Stripe's test card whose charges are declined for `insufficient_funds`.
pub const INSUFFICIENT_FUNDS_CARD_NUMBER: &str = "4000000000009995";

/// The last four digits a sandbox charge is declined for, with the decline's code and message
/// in Stripe's words.
pub const CHARGE_DECLINES: [(&str, &str, &str); 2] = [
    ("0341", "card_declined", "Your card was declined."),
    (
        "9995",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
];

/// Card numbers run from 12 (some Maestro) to 19 digits (ISO/IEC 7812).
const MIN_DIGITS: usize = 12;
const MAX_DIGITS: usize = 19;

/// How far ahead an expiry may lie before it is taken for a typo rather than a card.
const MAX_YEARS_AHEAD: i32 = 50;

/// A card the sandbox accepted. Only what may be stored is kept: never the full number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxCard {
    pub brand: CardBrand,
    pub last_four: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SandboxCardError {
    #[error("card number is invalid")]
    InvalidNumber,
    #[error("card expiry date is invalid")]
    InvalidExpiry,
    #[error("card has expired")]
    Expired,
    #[error("card was declined")]
    Declined,
}

impl SandboxCard {
    /// Checks a card as the sandbox provider would charge it at `now`.
    ///
    /// Spaces in the number are ignored (people paste `4242 4242 4242 4242`); a two-digit year
    /// means this century, as printed on cards.
    pub fn parse(
        card_number: &str,
        exp_month: u32,
        exp_year: i32,
        now: DateTime<Utc>,
    ) -> Result<Self, SandboxCardError> {
        let digits: String = card_number.chars().filter(|c| *c != ' ').collect();
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !luhn_valid(&digits)
        {
            return Err(SandboxCardError::InvalidNumber);
        }

        let exp_year = if (0..100).contains(&exp_year) {
            2000 + exp_year
        } else {
            exp_year
        };
        if !(1..=12).contains(&exp_month) || exp_year > now.year() + MAX_YEARS_AHEAD {
            return Err(SandboxCardError::InvalidExpiry);
        }
        // A card is good through the last day of its expiry month.
        if (exp_year, exp_month) < (now.year(), now.month()) {
            return Err(SandboxCardError::Expired);
        }

        if digits == DECLINED_CARD_NUMBER {
            return Err(SandboxCardError::Declined);
        }

        Ok(Self {
            brand: CardBrand::from_number(&digits),
            last_four: digits[digits.len() - 4..].to_owned(),
            exp_month,
            exp_year,
        })
    }
}

impl CardBrand {
    /// The brand from the issuer identification number, by the networks' published ranges.
    pub fn from_number(digits: &str) -> Self {
        let prefix =
            |n: usize| -> u32 { digits.get(..n).and_then(|p| p.parse().ok()).unwrap_or(0) };
        match (prefix(1), prefix(2), prefix(3), prefix(4)) {
            (4, ..) => Self::Visa,
            (_, 51..=55, ..) | (.., 2221..=2720) => Self::Mastercard,
            (_, 34 | 37, ..) => Self::Amex,
            (.., 6011) | (_, 65, ..) | (_, _, 644..=649, _) => Self::Discover,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for CardBrand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Luhn mod-10 check: catches every single-digit typo and most transpositions.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 15, 12, 0, 0).unwrap()
    }

    fn parse(number: &str) -> Result<SandboxCard, SandboxCardError> {
        SandboxCard::parse(number, 12, 2030, now())
    }

    #[test]
    fn a_visa_card_is_accepted_with_its_brand_and_last_four_digits() {
        let card = parse("4242424242424242").unwrap();
        assert_eq!(card.brand, CardBrand::Visa);
        assert_eq!(card.last_four, "4242");
        assert_eq!((card.exp_month, card.exp_year), (12, 2030));
    }

    #[test]
    fn spaces_in_the_number_are_ignored() {
        let card = parse("4242 4242 4242 4242").unwrap();
        assert_eq!(card.last_four, "4242");
    }

    #[test]
    fn brands_follow_the_networks_number_ranges() {
        for (number, brand) in [
            ("5555555555554444", CardBrand::Mastercard),
            ("5105105105105100", CardBrand::Mastercard),
            ("2223003122003222", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("371449635398431", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("6555900000604105", CardBrand::Discover),
            ("3056930009020004", CardBrand::Unknown),
        ] {
            assert_eq!(parse(number).unwrap().brand, brand, "{number}");
        }
    }

    #[test]
    fn brand_ranges_have_sharp_edges() {
        assert_eq!(
            CardBrand::from_number("2220990000000000"),
            CardBrand::Unknown
        );
        assert_eq!(
            CardBrand::from_number("2221000000000000"),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardBrand::from_number("2720990000000000"),
            CardBrand::Mastercard
        );
        assert_eq!(
            CardBrand::from_number("2721000000000000"),
            CardBrand::Unknown
        );
        assert_eq!(
            CardBrand::from_number("5000000000000000"),
            CardBrand::Unknown
        );
        assert_eq!(
            CardBrand::from_number("5600000000000000"),
            CardBrand::Unknown
        );
        assert_eq!(
            CardBrand::from_number("6010000000000000"),
            CardBrand::Unknown
        );
    }

    #[test]
    fn a_number_failing_the_luhn_check_is_refused() {
        assert_eq!(
            parse("4242424242424241"),
            Err(SandboxCardError::InvalidNumber)
        );
    }

    #[test]
    fn a_number_with_letters_or_dashes_is_refused() {
        assert_eq!(
            parse("4242-4242-4242-4242"),
            Err(SandboxCardError::InvalidNumber)
        );
        assert_eq!(
            parse("42424242424242ab"),
            Err(SandboxCardError::InvalidNumber)
        );
        assert_eq!(parse(""), Err(SandboxCardError::InvalidNumber));
    }

    #[test]
    fn numbers_shorter_than_12_or_longer_than_19_digits_are_refused() {
        // Both pass Luhn, so only the length refuses them.
        assert_eq!(parse("42424242420"), Err(SandboxCardError::InvalidNumber));
        assert_eq!(
            parse("42424242424242424242"),
            Err(SandboxCardError::InvalidNumber)
        );
        assert!(parse("424242424242").is_ok());
    }

    #[test]
    fn an_invalid_expiry_month_is_refused() {
        for month in [0, 13] {
            assert_eq!(
                SandboxCard::parse("4242424242424242", month, 2030, now()),
                Err(SandboxCardError::InvalidExpiry)
            );
        }
    }

    #[test]
    fn an_expiry_too_far_ahead_is_refused() {
        assert_eq!(
            SandboxCard::parse("4242424242424242", 1, 2090, now()),
            Err(SandboxCardError::InvalidExpiry)
        );
    }

    #[test]
    fn an_expired_card_is_refused() {
        assert_eq!(
            SandboxCard::parse("4242424242424242", 5, 2025, now()),
            Err(SandboxCardError::Expired)
        );
        assert_eq!(
            SandboxCard::parse("4242424242424242", 12, 2024, now()),
            Err(SandboxCardError::Expired)
        );
    }

    #[test]
    fn a_card_is_good_through_its_expiry_month() {
        assert!(SandboxCard::parse("4242424242424242", 6, 2025, now()).is_ok());
    }

    #[test]
    fn a_two_digit_year_means_this_century() {
        let card = SandboxCard::parse("4242424242424242", 3, 30, now()).unwrap();
        assert_eq!(card.exp_year, 2030);
    }

    #[test]
    fn the_decline_test_card_is_declined() {
        assert_eq!(parse("4000000000000002"), Err(SandboxCardError::Declined));
        assert_eq!(
            parse("4000 0000 0000 0002"),
            Err(SandboxCardError::Declined)
        );
    }

    #[test]
    fn the_charge_decline_cards_are_added_and_named_by_their_last_four_digits() {
        for (number, (last_four, ..)) in
            [CHARGE_DECLINED_CARD_NUMBER, INSUFFICIENT_FUNDS_CARD_NUMBER]
                .into_iter()
                .zip(CHARGE_DECLINES)
        {
            assert_eq!(parse(number).unwrap().last_four, last_four);
        }
    }

    #[test]
    fn brand_serializes_lowercase() {
        let card = parse("378282246310005").unwrap();
        let json = serde_json::to_value(&card).unwrap();
        assert_eq!(json["brand"], "amex");
        assert_eq!(json["lastFour"], "0005");
    }
}
