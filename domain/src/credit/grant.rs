use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::CreditGrantId;

/// Where a grant's credits came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantSource {
    /// The plan's allowance for a period.
    Subscription,
    Manual,
    Promotion,
    Refund,
    /// Bought by the customer.
    Topup,
}

impl GrantSource {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantSource::Subscription => "subscription",
            GrantSource::Manual => "manual",
            GrantSource::Promotion => "promotion",
            GrantSource::Refund => "refund",
            GrantSource::Topup => "topup",
        }
    }

    pub fn parse(raw: &str) -> Option<GrantSource> {
        [
            GrantSource::Subscription,
            GrantSource::Manual,
            GrantSource::Promotion,
            GrantSource::Refund,
            GrantSource::Topup,
        ]
        .into_iter()
        .find(|source| source.as_str() == raw)
    }
}

/// A grant's state at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    Active,
    /// Used up.
    Depleted,
    Expired,
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Active => "active",
            GrantStatus::Depleted => "depleted",
            GrantStatus::Expired => "expired",
            GrantStatus::Revoked => "revoked",
        }
    }
}

/// One grant of credits in a ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditGrant {
    pub id: CreditGrantId,
    pub source: GrantSource,
    /// Lower is consumed first.
    pub priority: i32,
    pub initial_amount: i64,
    pub remaining_amount: i64,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub reference_code: Option<String>,
    pub notes: Option<String>,
    pub granted_at: DateTime<Utc>,
    /// When an expiry or a revocation was recorded.
    pub expired_recorded: bool,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl CreditGrant {
    /// Its state at `at`: an expiry counts from `expires_at` on, recorded or not.
    pub fn status_at(&self, at: DateTime<Utc>) -> GrantStatus {
        if self.revoked_at.is_some() {
            GrantStatus::Revoked
        } else if self.expired_recorded || self.expires_at.is_some_and(|end| end <= at) {
            GrantStatus::Expired
        } else if self.remaining_amount == 0 {
            GrantStatus::Depleted
        } else {
            GrantStatus::Active
        }
    }

    /// The credits usage at `at` may draw from it: none before it starts or once it ended.
    pub fn available_at(&self, at: DateTime<Utc>) -> i64 {
        if self.starts_at <= at && self.status_at(at) == GrantStatus::Active {
            self.remaining_amount
        } else {
            0
        }
    }

    /// It still counts toward the balance's total at `at`: neither ended nor revoked.
    pub fn live_at(&self, at: DateTime<Utc>) -> bool {
        matches!(
            self.status_at(at),
            GrantStatus::Active | GrantStatus::Depleted
        )
    }
}
