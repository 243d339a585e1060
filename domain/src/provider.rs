use serde::{Deserialize, Serialize};

/// Who holds a merchant's payment methods and charges them. Each merchant picks one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Built in, charges nothing real: the default for a new merchant, for development and
    /// tests.
    #[default]
    Sandbox,
    Stripe,
    Dodo,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sandbox => "sandbox",
            Provider::Stripe => "stripe",
            Provider::Dodo => "dodo",
        }
    }

    pub fn parse(value: &str) -> Option<Provider> {
        match value {
            "sandbox" => Some(Provider::Sandbox),
            "stripe" => Some(Provider::Stripe),
            "dodo" => Some(Provider::Dodo),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_stored_and_parsed_by_their_lowercase_name() {
        for provider in [Provider::Sandbox, Provider::Stripe, Provider::Dodo] {
            let stored = serde_json::to_value(provider).unwrap();
            assert_eq!(stored, serde_json::json!(provider.as_str()));
            assert_eq!(Provider::parse(provider.as_str()), Some(provider));
        }
        assert_eq!(Provider::parse("Stripe"), None);
    }
}
