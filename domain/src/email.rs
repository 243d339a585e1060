use std::fmt;

use serde::{Deserialize, Serialize};

/// An email address that passed [`Email::parse`]. It keeps the case it was given; uniqueness
/// compares [`Email::normalized`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Email is required")]
    Missing,
    #[error("Invalid email address")]
    Invalid,
}

impl Email {
    /// Accepts the everyday shape `local@domain.tld`: no spaces, one `@`, a local part of at
    /// most 64 characters and a dotted domain of letters, digits and hyphens. Surrounding
    /// whitespace is trimmed; a blank string counts as missing.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(EmailError::Missing);
        }
        let (local, domain) = value.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_graphic() && !"@()<>[]:;,\\\"".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if value.len() <= 254 && local_ok && domain_ok {
            Ok(Email(value.to_owned()))
        } else {
            Err(EmailError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two addresses are compared in: lowercase.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_parse_and_keep_their_case() {
        let email = Email::parse("  Jane.Doe+billing@Example.co.uk ").unwrap();
        assert_eq!(email.as_str(), "Jane.Doe+billing@Example.co.uk");
        assert_eq!(email.normalized(), "jane.doe+billing@example.co.uk");
    }

    #[test]
    fn blank_is_missing_and_malformed_is_invalid() {
        assert_eq!(Email::parse("   "), Err(EmailError::Missing));
        for bad in [
            "plainaddress",
            "@example.com",
            "jane@",
            "jane@localhost",
            "jane doe@example.com",
            "jane@exa_mple.com",
            "jane@.example.com",
            "jane..doe@example.com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError::Invalid), "{bad}");
        }
    }
}
