//! Amounts as a reader expects them: the currency's symbol or code, its own number of decimals,
//! thousands grouped. Integer arithmetic only: an amount is minor units, never a float.

/// `cents` (minor units of `currency`) as text: `$1,234.50`, `€12.00`, `¥500`, `1.500 KWD`,
/// `-$5.00`. The currencies with a symbol everybody reads the same way (USD, EUR, GBP, JPY)
/// get it in front; any other code follows the number, so `$` never means two currencies.
/// A code is read case-insensitively; an unknown one gets two decimals.
pub fn format_money(cents: i64, currency: &str) -> String {
    let code = currency.trim().to_ascii_uppercase();
    let decimals = minor_unit_digits(&code);
    let number = format_unsigned(cents.unsigned_abs(), decimals);
    let sign = if cents < 0 { "-" } else { "" };
    match symbol(&code) {
        Some(symbol) => format!("{sign}{symbol}{number}"),
        None if code.is_empty() => format!("{sign}{number}"),
        None => format!("{sign}{number} {code}"),
    }
}

/// A count with its thousands grouped: `1,000,000`, `-12`.
pub(crate) fn format_count(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{}", group_thousands(value.unsigned_abs()))
}

fn symbol(code: &str) -> Option<&'static str> {
    match code {
        "USD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

/// ISO 4217's minor unit of each currency that does not use two decimals.
fn minor_unit_digits(code: &str) -> u32 {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        "CLF" | "UYW" => 4,
        _ => 2,
    }
}

fn format_unsigned(minor_units: u64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    let whole = group_thousands(minor_units / scale);
    if decimals == 0 {
        whole
    } else {
        let fraction = minor_units % scale;
        format!("{whole}.{fraction:0width$}", width = decimals as usize)
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_have_a_symbol_two_decimals_and_grouped_thousands() {
        assert_eq!(format_money(123_450, "USD"), "$1,234.50");
        assert_eq!(format_money(0, "USD"), "$0.00");
        assert_eq!(format_money(5, "USD"), "$0.05");
        assert_eq!(format_money(99_999, "USD"), "$999.99");
        assert_eq!(format_money(100_000, "USD"), "$1,000.00");
    }

    #[test]
    fn euros_pounds_and_yen_have_their_symbols() {
        assert_eq!(format_money(1_200, "EUR"), "€12.00");
        assert_eq!(format_money(1_200, "GBP"), "£12.00");
        assert_eq!(format_money(500, "JPY"), "¥500");
        assert_eq!(format_money(1_234_567, "JPY"), "¥1,234,567");
    }

    #[test]
    fn three_decimal_currencies_keep_their_fils() {
        assert_eq!(format_money(1_500, "KWD"), "1.500 KWD");
        assert_eq!(format_money(1_234_567, "BHD"), "1,234.567 BHD");
        assert_eq!(format_money(7, "OMR"), "0.007 OMR");
    }

    #[test]
    fn other_codes_follow_the_number_with_two_decimals() {
        assert_eq!(format_money(123_456, "CHF"), "1,234.56 CHF");
        assert_eq!(format_money(100, "XYZ"), "1.00 XYZ");
        assert_eq!(format_money(100, ""), "1.00");
    }

    #[test]
    fn codes_are_read_case_insensitively() {
        assert_eq!(format_money(1_000, "usd"), "$10.00");
        assert_eq!(format_money(1_000, " jpy "), "¥1,000");
        assert_eq!(format_money(1_000, "chf"), "10.00 CHF");
    }

    #[test]
    fn negative_amounts_put_the_minus_first() {
        assert_eq!(format_money(-500, "USD"), "-$5.00");
        assert_eq!(format_money(-290_000, "EUR"), "-€2,900.00");
        assert_eq!(format_money(-1, "KWD"), "-0.001 KWD");
        assert_eq!(format_money(-42, "JPY"), "-¥42");
        assert_eq!(format_money(-1_000, "CHF"), "-10.00 CHF");
    }

    #[test]
    fn large_amounts_are_grouped() {
        assert_eq!(format_money(1_000_000_000_000, "USD"), "$10,000,000,000.00");
        assert_eq!(format_money(123_456_789_012, "EUR"), "€1,234,567,890.12");
    }

    #[test]
    fn the_extremes_of_i64_format_without_panicking() {
        assert_eq!(format_money(i64::MAX, "USD"), "$92,233,720,368,547,758.07");
        assert_eq!(format_money(i64::MIN, "USD"), "-$92,233,720,368,547,758.08");
        assert_eq!(format_money(i64::MIN, "JPY"), "-¥9,223,372,036,854,775,808");
        assert_eq!(
            format_money(i64::MAX, "CLF"),
            "922,337,203,685,477.5807 CLF"
        );
    }

    #[test]
    fn counts_are_grouped_like_amounts() {
        assert_eq!(format_count(1), "1");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(1_000_000), "1,000,000");
        assert_eq!(format_count(-12_345), "-12,345");
        assert_eq!(format_count(i64::MIN), "-9,223,372,036,854,775,808");
    }
}
