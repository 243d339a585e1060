//! `credit_balances`: each customer's credit grants per feature with what is left of them
//! (table `credit_grants`), from which a balance is summed at the tenant's now — an expiry
//! counts from its `expiresAt` on, recorded or not, so a stored sum would be wrong until the
//! scheduler records it. Projected inline, so a balance read after a usage shows it.
//!
//! An append's writes are one statement whose parts do not see each other's rows, so the
//! events of one append are folded here first: a grant made and drawn from in the same append
//! (a rebuild replays a whole ledger at once) is inserted with what is left of it, and a
//! grant drawn from twice is updated once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::credit::{CreditEvent, CreditLedger};
use domain::tenant::Tenant;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};

pub const NAME: &str = "credit_balances";
pub const TABLE: &str = "credit_grants";

/// A customer's balance of one feature at a moment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BalanceView {
    pub feature_slug: String,
    pub remaining: i64,
    pub total: i64,
    pub used: i64,
    pub next_expiry: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantView {
    pub id: String,
    pub tenant: String,
    pub customer_id: String,
    pub feature_slug: String,
    pub source: String,
    pub priority: i32,
    pub initial_amount: i64,
    pub remaining_amount: i64,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub ended: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub reference_code: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl GrantView {
    /// `active`, `depleted`, `expired` or `revoked` at `at`, as the ledger's rules say.
    pub fn status_at(&self, at: DateTime<Utc>) -> &'static str {
        match self.ended.as_deref() {
            Some("revoked") => "revoked",
            Some(_) => "expired",
            None if self.expires_at.is_some_and(|end| end <= at) => "expired",
            None if self.remaining_amount == 0 => "depleted",
            None => "active",
        }
    }
}

const COLUMNS: &str = "id, tenant, customer_id, feature_slug, source, priority, initial_amount, \
    remaining_amount, starts_at, expires_at, ended, ended_at, reference_code, notes, created_at";

#[derive(Debug, Clone, Copy, Default)]
pub struct CreditBalancesProjection;

impl CreditBalancesProjection {
    /// The customer's balance of each feature it has credits for, at `at`.
    pub async fn balances(
        pool: &PgPool,
        tenant: &Tenant,
        customer_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<BalanceView>, sqlx::Error> {
        // Live: neither ended nor past its expiry. Available: live and started.
        sqlx::query_as(&format!(
            "SELECT feature_slug, \
                 coalesce(sum(remaining_amount) FILTER (WHERE live AND starts_at <= $3), 0)::bigint \
                     AS remaining, \
                 coalesce(sum(initial_amount) FILTER (WHERE live), 0)::bigint AS total, \
                 coalesce(sum(initial_amount - remaining_amount) FILTER (WHERE live), 0)::bigint \
                     AS used, \
                 min(expires_at) FILTER (WHERE live AND starts_at <= $3 AND remaining_amount > 0) \
                     AS next_expiry \
             FROM (SELECT *, ended IS NULL AND (expires_at IS NULL OR expires_at > $3) AS live \
                   FROM {TABLE} WHERE tenant = $1 AND customer_id = $2) grants \
             GROUP BY feature_slug ORDER BY feature_slug"
        ))
        .bind(tenant.key())
        .bind(customer_id)
        .bind(at)
        .fetch_all(pool)
        .await
    }

    /// The customer's grants, of one feature or all, oldest first.
    pub async fn grants(
        pool: &PgPool,
        tenant: &Tenant,
        customer_id: &str,
        feature_slug: Option<&str>,
    ) -> Result<Vec<GrantView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND customer_id = $2 \
               AND ($3::text IS NULL OR feature_slug = $3) \
             ORDER BY created_at, id"
        ))
        .bind(tenant.key())
        .bind(customer_id)
        .bind(feature_slug)
        .fetch_all(pool)
        .await
    }

    /// The tenant's grant `id`.
    pub async fn grant(
        pool: &PgPool,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<GrantView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.key())
        .bind(id)
        .fetch_optional(pool)
        .await
    }
}

/// What one append changes of a grant it did not make.
#[derive(Default)]
struct GrantChange {
    consumed: i64,
    ended: Option<(&'static str, DateTime<Utc>)>,
}

impl InlineProjection for CreditBalancesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut made: BTreeMap<String, GrantView> = BTreeMap::new();
        let mut changed: BTreeMap<String, GrantChange> = BTreeMap::new();
        for event in events {
            let Some(decoded) = decode::<CreditLedger>(event)? else {
                continue;
            };
            match decoded {
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
                    at,
                } => {
                    made.insert(
                        grant_id.to_string(),
                        GrantView {
                            id: grant_id.to_string(),
                            tenant: tenant.key(),
                            customer_id: customer_id.to_string(),
                            feature_slug: feature_slug.to_string(),
                            source: source.as_str().to_owned(),
                            priority,
                            initial_amount: amount,
                            remaining_amount: amount,
                            starts_at,
                            expires_at,
                            ended: None,
                            ended_at: None,
                            reference_code,
                            notes,
                            created_at: at,
                        },
                    );
                }
                CreditEvent::CreditsConsumed { draws, .. } => {
                    for draw in draws {
                        let id = draw.grant_id.to_string();
                        match made.get_mut(&id) {
                            Some(grant) => grant.remaining_amount -= draw.amount,
                            None => changed.entry(id).or_default().consumed += draw.amount,
                        }
                    }
                }
                CreditEvent::CreditGrantExpired { grant_id, at, .. } => {
                    end(&mut made, &mut changed, grant_id.to_string(), "expired", at);
                }
                CreditEvent::CreditGrantRevoked { grant_id, at, .. } => {
                    end(&mut made, &mut changed, grant_id.to_string(), "revoked", at);
                }
                CreditEvent::UsageRecorded { .. } => {}
            }
        }
        for grant in made.into_values() {
            append.write(move |query| {
                query.push(format!("INSERT INTO {TABLE} ({COLUMNS}) VALUES ("));
                let mut values = query.separated(", ");
                values
                    .push_bind(grant.id)
                    .push_bind(grant.tenant)
                    .push_bind(grant.customer_id)
                    .push_bind(grant.feature_slug)
                    .push_bind(grant.source)
                    .push_bind(grant.priority)
                    .push_bind(grant.initial_amount)
                    .push_bind(grant.remaining_amount)
                    .push_bind(grant.starts_at)
                    .push_bind(grant.expires_at)
                    .push_bind(grant.ended)
                    .push_bind(grant.ended_at)
                    .push_bind(grant.reference_code)
                    .push_bind(grant.notes)
                    .push_bind(grant.created_at);
                query.push(")");
            });
        }
        for (id, change) in changed {
            append.write(move |query| {
                query
                    .push(format!(
                        "UPDATE {TABLE} SET remaining_amount = remaining_amount - "
                    ))
                    .push_bind(change.consumed);
                if let Some((ended, at)) = change.ended {
                    query
                        .push(", ended = ")
                        .push_bind(ended)
                        .push(", ended_at = ")
                        .push_bind(at);
                }
                query.push(" WHERE id = ").push_bind(id);
            });
        }
        Ok(())
    }
}

/// Records that grant `id` ended, in whichever of this append's maps holds it.
fn end(
    made: &mut BTreeMap<String, GrantView>,
    changed: &mut BTreeMap<String, GrantChange>,
    id: String,
    how: &'static str,
    at: DateTime<Utc>,
) {
    match made.get_mut(&id) {
        Some(grant) => {
            grant.ended = Some(how.to_owned());
            grant.ended_at = Some(at);
        }
        None => changed.entry(id).or_default().ended = Some((how, at)),
    }
}
