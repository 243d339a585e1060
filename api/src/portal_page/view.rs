//! What the page's templates print: amounts, moments and statuses already in words, with the
//! raw values beside them for the browser to put in the customer's locale (`portal.js`).

use chrono::{DateTime, Utc};

/// An amount: the server's rendering (`$29.00`), shown as is when scripts do not run, and
/// the integer cents and currency that `Intl.NumberFormat` formats in the reader's locale.
pub struct Money {
    pub cents: i64,
    pub currency: String,
    pub text: String,
}

impl Money {
    pub fn new(cents: i64, currency: &str) -> Self {
        let currency = currency.to_ascii_uppercase();
        Self {
            text: documents::format_money(cents, &currency),
            cents,
            currency,
        }
    }
}

/// A moment: ISO 8601 for `<time datetime>`, and a UTC fallback text.
pub struct Stamp {
    pub iso: String,
    pub text: String,
}

impl Stamp {
    pub fn date(at: DateTime<Utc>) -> Self {
        Self {
            iso: at.to_rfc3339(),
            text: at.format("%Y-%m-%d").to_string(),
        }
    }

    pub fn date_time(at: DateTime<Utc>) -> Self {
        Self {
            iso: at.to_rfc3339(),
            text: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// A status as a badge: the colour is a tone, and the words always come with it, so colour
/// is never the only signal.
pub struct Badge {
    pub tone: &'static str,
    pub words: String,
}

impl Badge {
    fn new(tone: &'static str, words: &str) -> Self {
        Self {
            tone,
            words: words.to_owned(),
        }
    }

    pub fn invoice(status: &str) -> Self {
        match status {
            "paid" => Self::new("good", "Paid"),
            "issued" => Self::new("warn", "Open"),
            "uncollectible" => Self::new("bad", "Uncollectible"),
            "void" => Self::new("quiet", "Void"),
            "draft" => Self::new("quiet", "Draft"),
            other => Self::new("quiet", &capitalized(other)),
        }
    }

    pub fn payment(status: &str) -> Self {
        match status {
            "succeeded" => Self::new("good", "Succeeded"),
            "failed" => Self::new("bad", "Failed"),
            "pending" => Self::new("warn", "Pending"),
            other => Self::new("quiet", &capitalized(other)),
        }
    }
}

/// An invoice's document type as the customer reads it.
pub fn document_type(kind: &str) -> String {
    match kind {
        "standard" => "Invoice".into(),
        "cancellation" => "Cancellation".into(),
        "credit_note" => "Credit note".into(),
        other => capitalized(&other.replace('_', " ")),
    }
}

/// A card brand as printed on cards: `visa` → `Visa`, `amex` → `American Express`.
pub fn card_brand(brand: &str) -> String {
    match brand {
        "amex" => "American Express".into(),
        "mastercard" => "Mastercard".into(),
        "diners" => "Diners Club".into(),
        "unionpay" => "UnionPay".into(),
        other => capitalized(other),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_badge_has_words() {
        for status in ["paid", "issued", "void", "draft", "uncollectible", "weird"] {
            assert!(!Badge::invoice(status).words.is_empty());
        }
        assert_eq!(Badge::payment("failed").words, "Failed");
        assert_eq!(Badge::payment("failed").tone, "bad");
    }

    #[test]
    fn money_falls_back_to_the_currency_format() {
        assert_eq!(Money::new(2900, "usd").text, "$29.00");
        assert_eq!(Money::new(500, "JPY").text, "¥500");
    }
}
