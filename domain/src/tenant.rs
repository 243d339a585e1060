use serde::{Deserialize, Serialize};

/// Whether a request runs against a merchant's test data or live data. Like Stripe's modes,
/// the two never see each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    pub fn parse(value: &str) -> Option<Mode> {
        match value {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
}

/// The owner of every piece of data: one merchant in one mode. Everything is scoped to a
/// tenant, and anything of another tenant is "not found".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub merchant_id: String,
    pub mode: Mode,
}

impl Tenant {
    pub fn new(merchant_id: impl Into<String>, mode: Mode) -> Self {
        Self {
            merchant_id: merchant_id.into(),
            mode,
        }
    }

    /// The single-column form stored beside events and rows: `merchant_…:test`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.merchant_id, self.mode.as_str())
    }

    /// The tenant a [`key`](Self::key) names.
    pub fn from_key(key: &str) -> Option<Self> {
        let (merchant_id, mode) = key.rsplit_once(':')?;
        Some(Self::new(merchant_id, Mode::parse(mode)?))
    }
}
