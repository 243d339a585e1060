//! The merchant's page a portal customer goes back to: parsed once, so a stored one is always an
//! absolute http(s) URL the portal page can put behind a link without a second look.

use reqwest::Url;

use crate::error::AppError;

/// Long enough for any real page with its query; a bound so a session row stays small.
const MAX_LENGTH: usize = 2048;

/// An absolute `http` or `https` URL with a host and no credentials in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUrl(String);

impl ReturnUrl {
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        let invalid = || AppError::invalid("returnUrl must be an absolute http(s) URL");
        if raw.len() > MAX_LENGTH {
            return Err(AppError::invalid(format!(
                "returnUrl must be at most {MAX_LENGTH} characters"
            )));
        }
        let url = Url::parse(raw.trim()).map_err(|_| invalid())?;
        // `javascript:` and `data:` links would run in the portal's origin; userinfo would put a
        // password in front of the customer.
        let web = matches!(url.scheme(), "http" | "https");
        if !web || url.host_str().is_none_or(str::is_empty) {
            return Err(invalid());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AppError::invalid("returnUrl must not carry credentials"));
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_web_url_is_kept() {
        let url = ReturnUrl::parse("https://shop.example.com/account?tab=billing").unwrap();
        assert_eq!(url.as_str(), "https://shop.example.com/account?tab=billing");
    }

    #[test]
    fn a_script_or_relative_or_credentialed_url_is_refused() {
        for raw in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "/account",
            "shop.example.com",
            "https://user:pw@shop.example.com/",
            "ftp://shop.example.com/",
        ] {
            assert!(ReturnUrl::parse(raw).is_err(), "{raw} was accepted");
        }
    }
}
