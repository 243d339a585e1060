//! Control characters (NUL above all: PostgreSQL's text and jsonb cannot hold it) are refused
//! wherever a request carries free strings — the query, JSON bodies — with a 400 before anything
//! reads them, so no input can reach the database as a value it cannot store. Path parameters
//! are ids, which their parsers refuse with the resource's own message (a webhook's merchant id
//! and a sandbox intent's id are checked by their use-cases).

use axum::http::Uri;

pub const IN_QUERY: &str = "Query parameters must not contain control characters";
pub const IN_BODY: &str = "Strings in the request body must not contain control characters";

/// Whether `text` holds a control character, raw or percent-encoded (`%00`–`%1F`, `%7F`).
pub fn in_url_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().any(|b| b.is_ascii_control())
        || bytes.windows(3).any(|w| {
            w[0] == b'%'
                && matches!(
                    (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                    (b'0' | b'1', b'0'..=b'9' | b'A'..=b'F') | (b'7', b'F')
                )
        })
}

/// Whether a JSON text holds a control character inside a string. Valid JSON carries them only
/// as escapes (a raw one is a syntax error, refused by the parser anyway): `\n`, `\t`, `\r`,
/// `\b`, `\f`, or `\u0000`–`\u001F` and `\u007F`–`\u009F`.
pub fn in_json_strings(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] != b'\\' {
            i += 1;
            continue;
        }
        match json.get(i + 1) {
            Some(b'n' | b't' | b'r' | b'b' | b'f') => return true,
            Some(b'u') => {
                let code = json
                    .get(i + 2..i + 6)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok());
                if code.is_some_and(|c| c < 0x20 || (0x7f..=0x9f).contains(&c)) {
                    return true;
                }
                i += 6;
            }
            // `\\`, `\"`, `\/`: the next byte is the escape's, not the start of another.
            _ => i += 2,
        }
    }
    false
}

/// Whether the query of `uri` holds a control character.
pub fn in_query(uri: &Uri) -> bool {
    uri.query().is_some_and(in_url_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_control_characters_raw_or_encoded_are_found() {
        assert!(in_url_text("/v1/customers/cust_%00"));
        assert!(in_url_text("email=a%0ab"));
        assert!(in_url_text("email=a%1Fb"));
        assert!(in_url_text("x=%7f"));
        assert!(!in_url_text(
            "/v1/customers/cust_1?email=a%40b.com&x=%20%2F%80"
        ));
    }

    #[test]
    fn json_strings_with_control_escapes_are_found_and_others_pass() {
        assert!(in_json_strings(br#"{"name":"a\u0000b"}"#));
        assert!(in_json_strings(br#"{"a":{"b":["x\nY"]}}"#));
        assert!(in_json_strings(br#"{"a":"\u001F"}"#));
        assert!(in_json_strings(br#"{"a":"\u0085"}"#));
        assert!(!in_json_strings(
            br#"{"a":"\\n is two characters","b":"\u00e9\"\/"}"#
        ));
        assert!(!in_json_strings(b"{\n  \"a\": 1\n}"));
    }
}
