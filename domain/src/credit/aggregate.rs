use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::credit::{
    CreditCommand, CreditDraw, CreditError, CreditEvent, CreditGrant, CreditServices, FeatureSlug,
    GrantStatus, NewGrant,
};
use crate::id::{CustomerId, UsageId};
use crate::tenant::Tenant;

/// The most credits a grant or a usage may move.
pub const MAX_CREDITS: i64 = 1_000_000_000_000;
const DEFAULT_PRIORITY: i32 = 50;
const MAX_PRIORITY: i32 = 100;
const MAX_KEY_CHARS: usize = 255;
const MAX_TEXT_CHARS: usize = 500;

/// What a recorded usage answered, kept by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageOutcome {
    pub usage_id: UsageId,
    pub quantity: i64,
    pub credits_consumed: i64,
    pub overage_units: i64,
    pub remaining_after: i64,
    pub at: DateTime<Utc>,
}

/// The balance at a moment: what usage may draw (`remaining`), of the grants that still
/// count (`total`, their initial amounts), what of those was used, and the next expiry of a
/// grant with credits left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditBalance {
    pub remaining: i64,
    pub total: i64,
    pub used: i64,
    pub next_expiry: Option<DateTime<Utc>>,
}

/// A customer's credits for one feature, as its events describe them. `Default` is the
/// ledger that was never opened: cqrs-es loads an unknown id that way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditLedger {
    pub tenant: Option<Tenant>,
    pub customer_id: Option<CustomerId>,
    pub feature_slug: Option<FeatureSlug>,
    /// In the order granted.
    pub grants: Vec<CreditGrant>,
    /// The last usage recorded: what its command answers. Earlier usages are not kept, so the
    /// state stays small however busy the ledger; a repeated idempotency key is refused by
    /// the `credit_balances` read model's claim, in the append (see `app/src/credits.rs`).
    pub last_usage: Option<UsageOutcome>,
}

impl CreditLedger {
    pub fn exists(&self) -> bool {
        self.tenant.is_some()
    }

    /// The ledger's balance at `at`.
    pub fn balance_at(&self, at: DateTime<Utc>) -> CreditBalance {
        let live = || self.grants.iter().filter(|grant| grant.live_at(at));
        let total: i64 = live().map(|grant| grant.initial_amount).sum();
        let left: i64 = live().map(|grant| grant.remaining_amount).sum();
        CreditBalance {
            remaining: self.grants.iter().map(|grant| grant.available_at(at)).sum(),
            total,
            used: total - left,
            next_expiry: self
                .grants
                .iter()
                .filter(|grant| grant.available_at(at) > 0)
                .filter_map(|grant| grant.expires_at)
                .min(),
        }
    }

    /// The usage recorded by the command that made `usage_id`, if this ledger's last one.
    pub fn usage(&self, usage_id: &UsageId) -> Option<&UsageOutcome> {
        self.last_usage
            .as_ref()
            .filter(|usage| &usage.usage_id == usage_id)
    }

    /// Opened for `tenant`'s customer and feature, or not yet opened: commands from
    /// elsewhere find nothing.
    fn check_owner(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
        feature_slug: &FeatureSlug,
    ) -> Result<(), CreditError> {
        let opened = (&self.tenant, &self.customer_id, &self.feature_slug);
        match opened {
            (None, None, None) => Ok(()),
            (Some(t), Some(c), Some(f)) if t == tenant && c == customer_id && f == feature_slug => {
                Ok(())
            }
            _ => Err(CreditError::NotFound),
        }
    }

    fn owned_by(&self, tenant: &Tenant) -> Result<(), CreditError> {
        match &self.tenant {
            Some(owner) if owner == tenant => Ok(()),
            _ => Err(CreditError::NotFound),
        }
    }

    /// What usage of `quantity` at `at` draws: lowest priority first, then soonest expiry
    /// (never last), then oldest.
    fn draws(&self, quantity: i64, at: DateTime<Utc>) -> Vec<CreditDraw> {
        let mut order: Vec<&CreditGrant> = self
            .grants
            .iter()
            .filter(|grant| grant.available_at(at) > 0)
            .collect();
        // `sort_by_key` is stable: equal keys keep the order granted, oldest first.
        order.sort_by_key(|grant| (grant.priority, grant.expires_at.is_none(), grant.expires_at));
        let mut left = quantity;
        let mut draws = Vec::new();
        for grant in order {
            if left == 0 {
                break;
            }
            let amount = left.min(grant.available_at(at));
            draws.push(CreditDraw {
                grant_id: grant.id.clone(),
                amount,
            });
            left -= amount;
        }
        draws
    }

    fn grant_event(
        tenant: Tenant,
        customer_id: CustomerId,
        feature_slug: FeatureSlug,
        grant: NewGrant,
        at: DateTime<Utc>,
    ) -> Result<CreditEvent, CreditError> {
        if !(1..=MAX_CREDITS).contains(&grant.amount) {
            return Err(CreditError::InvalidAmount);
        }
        let priority = grant.priority.unwrap_or(DEFAULT_PRIORITY);
        if !(0..=MAX_PRIORITY).contains(&priority) {
            return Err(CreditError::InvalidPriority);
        }
        let starts_at = grant.starts_at.unwrap_or(at);
        if grant.expires_at.is_some_and(|end| end <= starts_at) {
            return Err(CreditError::ExpiresBeforeStart);
        }
        let text =
            |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let (reference_code, notes) = (text(grant.reference_code), text(grant.notes));
        let feature_name = text(grant.feature_name);
        if [&reference_code, &notes, &feature_name].iter().any(|v| {
            v.as_ref()
                .is_some_and(|v| v.chars().count() > MAX_TEXT_CHARS)
        }) {
            return Err(CreditError::TextTooLong);
        }
        Ok(CreditEvent::CreditsGranted {
            tenant,
            customer_id,
            feature_slug,
            grant_id: grant.id,
            amount: grant.amount,
            source: grant.source,
            priority,
            starts_at,
            expires_at: grant.expires_at,
            reference_code,
            notes,
            feature_name,
            at,
        })
    }
}

impl Aggregate for CreditLedger {
    const TYPE: &'static str = "CreditLedger";
    type Command = CreditCommand;
    type Event = CreditEvent;
    type Error = CreditError;
    type Services = CreditServices;

    async fn handle(
        &mut self,
        command: CreditCommand,
        services: &CreditServices,
        sink: &EventSink<Self>,
    ) -> Result<(), CreditError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            CreditCommand::Grant {
                tenant,
                customer_id,
                feature_slug,
                grant,
            } => {
                self.check_owner(&tenant, &customer_id, &feature_slug)?;
                if self.grants.iter().any(|existing| existing.id == grant.id) {
                    return Err(CreditError::GrantExists);
                }
                let event = Self::grant_event(tenant, customer_id, feature_slug, grant, at)?;
                sink.write(event, self).await;
            }
            CreditCommand::RecordUsage {
                tenant,
                customer_id,
                feature_slug,
                usage_id,
                idempotency_key,
                quantity,
                occurred_at,
                overage_billed,
            } => {
                self.check_owner(&tenant, &customer_id, &feature_slug)?;
                let key = idempotency_key.trim();
                if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
                    return Err(CreditError::InvalidIdempotencyKey);
                }
                if !(1..=MAX_CREDITS).contains(&quantity) {
                    return Err(CreditError::InvalidQuantity);
                }
                let draws = self.draws(quantity, at);
                let credits_consumed: i64 = draws.iter().map(|draw| draw.amount).sum();
                let overage_units = quantity - credits_consumed;
                if overage_units > 0 && !overage_billed {
                    return Err(CreditError::InsufficientCredits);
                }
                let recorded = CreditEvent::UsageRecorded {
                    tenant,
                    customer_id,
                    feature_slug,
                    usage_id: usage_id.clone(),
                    idempotency_key: key.to_owned(),
                    quantity,
                    credits_consumed,
                    overage_units,
                    remaining_after: self.balance_at(at).remaining - credits_consumed,
                    occurred_at: occurred_at.unwrap_or(at),
                    at,
                };
                sink.write(recorded, self).await;
                if !draws.is_empty() {
                    let consumed = CreditEvent::CreditsConsumed {
                        usage_id,
                        draws,
                        at,
                    };
                    sink.write(consumed, self).await;
                }
            }
            CreditCommand::Revoke { tenant, grant_id } => {
                self.owned_by(&tenant)?;
                let grant = self
                    .grants
                    .iter()
                    .find(|grant| grant.id == grant_id)
                    .ok_or(CreditError::GrantNotFound)?;
                match grant.status_at(at) {
                    GrantStatus::Revoked => return Err(CreditError::AlreadyRevoked),
                    GrantStatus::Expired => return Err(CreditError::GrantExpired),
                    GrantStatus::Active | GrantStatus::Depleted => {}
                }
                let event = CreditEvent::CreditGrantRevoked {
                    grant_id,
                    forfeited: grant.remaining_amount,
                    at,
                };
                sink.write(event, self).await;
            }
            CreditCommand::RecordExpiries { tenant } => {
                self.owned_by(&tenant)?;
                let ended: Vec<CreditEvent> = self
                    .grants
                    .iter()
                    .filter(|grant| !grant.expired_recorded && grant.revoked_at.is_none())
                    .filter_map(|grant| {
                        let end = grant.expires_at.filter(|end| *end <= at)?;
                        Some(CreditEvent::CreditGrantExpired {
                            grant_id: grant.id.clone(),
                            forfeited: grant.remaining_amount,
                            at: end,
                        })
                    })
                    .collect();
                for event in ended {
                    sink.write(event, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: CreditEvent) {
        match event {
            CreditEvent::CreditsGranted {
                tenant,
                customer_id,
                feature_slug,
                grant_id,
                amount,
                source,
                priority,
                starts_at,
                expires_at,
                reference_code,
                notes,
                feature_name: _,
                at,
            } => {
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.feature_slug = Some(feature_slug);
                self.grants.push(CreditGrant {
                    id: grant_id,
                    source,
                    priority,
                    initial_amount: amount,
                    remaining_amount: amount,
                    starts_at,
                    expires_at,
                    reference_code,
                    notes,
                    granted_at: at,
                    expired_recorded: false,
                    revoked_at: None,
                });
            }
            CreditEvent::UsageRecorded {
                tenant,
                customer_id,
                feature_slug,
                usage_id,
                quantity,
                credits_consumed,
                overage_units,
                remaining_after,
                at,
                ..
            } => {
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.feature_slug = Some(feature_slug);
                self.last_usage = Some(UsageOutcome {
                    usage_id,
                    quantity,
                    credits_consumed,
                    overage_units,
                    remaining_after,
                    at,
                });
            }
            CreditEvent::CreditsConsumed { draws, .. } => {
                for draw in draws {
                    if let Some(grant) = self.grants.iter_mut().find(|g| g.id == draw.grant_id) {
                        grant.remaining_amount -= draw.amount;
                    }
                }
            }
            CreditEvent::CreditGrantExpired { grant_id, .. } => {
                if let Some(grant) = self.grants.iter_mut().find(|g| g.id == grant_id) {
                    grant.expired_recorded = true;
                }
            }
            CreditEvent::CreditGrantRevoked { grant_id, at, .. } => {
                if let Some(grant) = self.grants.iter_mut().find(|g| g.id == grant_id) {
                    grant.revoked_at = Some(at);
                }
            }
        }
    }
}
