use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::credit::{FeatureSlug, GrantSource};
use crate::id::{CreditGrantId, CustomerId, UsageId};
use crate::tenant::Tenant;

/// What a usage took from one grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditDraw {
    pub grant_id: CreditGrantId,
    pub amount: i64,
}

/// What happened to a customer's credits for a feature. Type names and payload shapes are
/// stored forever: never rename or reshape one; add a new version and an upcaster instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CreditEvent {
    /// Carries the ledger's owner, so the first grant opens it.
    #[serde(rename_all = "camelCase")]
    CreditsGranted {
        tenant: Tenant,
        customer_id: CustomerId,
        feature_slug: FeatureSlug,
        grant_id: CreditGrantId,
        amount: i64,
        source: GrantSource,
        priority: i32,
        starts_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        reference_code: Option<String>,
        notes: Option<String>,
        /// What the merchant calls the feature ("API calls"), when the grant says: a plan's
        /// allowance does. Added after the first grants were stored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feature_name: Option<String>,
        at: DateTime<Utc>,
    },
    /// A usage, whole: what credits covered (`credits_consumed`, drawn as its
    /// `CreditsConsumed` says) and what is overage, billed in arrears; `remaining_after` is
    /// the balance it left, the usage's answer.
    #[serde(rename_all = "camelCase")]
    UsageRecorded {
        /// The ledger's owner too: usage that is all overage may be the ledger's first event.
        tenant: Tenant,
        customer_id: CustomerId,
        feature_slug: FeatureSlug,
        usage_id: UsageId,
        idempotency_key: String,
        quantity: i64,
        credits_consumed: i64,
        overage_units: i64,
        remaining_after: i64,
        occurred_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// The grants a usage drew from, in the order it drew.
    #[serde(rename_all = "camelCase")]
    CreditsConsumed {
        usage_id: UsageId,
        draws: Vec<CreditDraw>,
        at: DateTime<Utc>,
    },
    /// `forfeited` is what was left of it.
    #[serde(rename_all = "camelCase")]
    CreditGrantExpired {
        grant_id: CreditGrantId,
        forfeited: i64,
        at: DateTime<Utc>,
    },
    #[serde(rename_all = "camelCase")]
    CreditGrantRevoked {
        grant_id: CreditGrantId,
        forfeited: i64,
        at: DateTime<Utc>,
    },
}

impl CreditEvent {
    pub const GRANTED: &'static str = "CreditsGranted";
    pub const USAGE_RECORDED: &'static str = "UsageRecorded";
    pub const CONSUMED: &'static str = "CreditsConsumed";
    pub const EXPIRED: &'static str = "CreditGrantExpired";
    pub const REVOKED: &'static str = "CreditGrantRevoked";

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            CreditEvent::CreditsGranted { at, .. }
            | CreditEvent::UsageRecorded { at, .. }
            | CreditEvent::CreditsConsumed { at, .. }
            | CreditEvent::CreditGrantExpired { at, .. }
            | CreditEvent::CreditGrantRevoked { at, .. } => *at,
        }
    }
}

impl DomainEvent for CreditEvent {
    fn event_type(&self) -> String {
        match self {
            CreditEvent::CreditsGranted { .. } => Self::GRANTED,
            CreditEvent::UsageRecorded { .. } => Self::USAGE_RECORDED,
            CreditEvent::CreditsConsumed { .. } => Self::CONSUMED,
            CreditEvent::CreditGrantExpired { .. } => Self::EXPIRED,
            CreditEvent::CreditGrantRevoked { .. } => Self::REVOKED,
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
