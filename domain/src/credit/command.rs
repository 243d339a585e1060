use chrono::{DateTime, Utc};

use crate::credit::{FeatureSlug, GrantSource};
use crate::id::{CreditGrantId, CustomerId, UsageId};
use crate::tenant::Tenant;

/// A grant as a command asks for it; unset times are "now" and "never".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    pub id: CreditGrantId,
    pub amount: i64,
    pub source: GrantSource,
    /// 0 to 100, lower consumed first; 50 when not given.
    pub priority: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub reference_code: Option<String>,
    pub notes: Option<String>,
    /// What the merchant calls the feature, for balances to show.
    pub feature_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditCommand {
    /// Adds a grant; the first one opens the ledger of the customer and feature.
    Grant {
        tenant: Tenant,
        customer_id: CustomerId,
        feature_slug: FeatureSlug,
        grant: NewGrant,
    },
    /// Consumes `quantity` of the feature. What credits do not cover is overage when
    /// `overage_billed` (the plan bills the feature's usage), else the whole usage is refused.
    /// The `idempotency_key` is recorded with it; that a key is recorded once is the read
    /// model's claim, kept in the append.
    RecordUsage {
        tenant: Tenant,
        customer_id: CustomerId,
        feature_slug: FeatureSlug,
        usage_id: UsageId,
        idempotency_key: String,
        quantity: i64,
        /// When the usage happened, as the caller says; now when not given.
        occurred_at: Option<DateTime<Utc>>,
        overage_billed: bool,
    },
    /// Ends a grant now: what was left of it is forfeited.
    Revoke {
        tenant: Tenant,
        grant_id: CreditGrantId,
    },
    /// Records the expiry of each grant whose `expires_at` has passed.
    RecordExpiries { tenant: Tenant },
}

impl CreditCommand {
    pub fn tenant(&self) -> &Tenant {
        match self {
            CreditCommand::Grant { tenant, .. }
            | CreditCommand::RecordUsage { tenant, .. }
            | CreditCommand::Revoke { tenant, .. }
            | CreditCommand::RecordExpiries { tenant } => tenant,
        }
    }
}
