//! Credits (issue 12, first part): grants into a customer's ledger for a feature, usage that
//! consumes them, revocation, recorded expiries, and balances read from `credit_balances` at
//! the tenant's now. One `CreditLedger` aggregate per (customer, feature): its id is
//! `<customer id>/<feature slug>`.

use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use domain::credit::{
    CreditCommand, CreditError, CreditLedger, FeatureSlug, GrantSource, NewGrant, UsageOutcome,
};
use domain::id::{CreditGrantId, CustomerId, PrefixedId, UsageId};
use domain::plan::pricing::invoiced_components;
use domain::plan::{CreditAllowance, PricingComponent};
use domain::subscription::Subscription;
use domain::tenant::Tenant;
use projections::read_models::credit_balances::{
    balances_at, BalanceView, CreditBalancesProjection, GrantView, TransactionView,
};
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::plan_list::PlanListProjection;
use projections::read_models::subscription_list::SubscriptionListProjection;
use projections::ClaimKind;
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::customers::NOT_FOUND as CUSTOMER_NOT_FOUND;
use crate::error::AppError;
use crate::ids::{parse_id, required_id};
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::{command_error, is_claim};

pub const GRANT_NOT_FOUND: &str = "Credit grant not found";

/// The ledger aggregate of a customer's credits for a feature.
pub fn ledger_id(customer_id: &CustomerId, feature_slug: &FeatureSlug) -> String {
    format!("{customer_id}/{feature_slug}")
}

/// A grant as the caller asks for it; missing fields are refused by name.
#[derive(Debug, Clone, Default)]
pub struct NewCreditGrant {
    pub customer_id: Option<String>,
    pub feature_slug: Option<String>,
    pub amount: Option<i64>,
    /// `manual`, `promotion` or `refund`: the others are the service's own.
    pub source: Option<String>,
    pub priority: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub reference_code: Option<String>,
    pub notes: Option<String>,
}

/// A usage as the caller reports it, of a customer named by our id or the merchant's own.
#[derive(Debug, Clone, Default)]
pub struct NewUsage {
    pub customer_id: Option<String>,
    pub external_customer_id: Option<String>,
    pub feature_slug: Option<String>,
    pub quantity: Option<i64>,
    pub idempotency_key: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

/// A customer's credits as the balance and the portal show them.
#[derive(Debug, Clone)]
pub struct CreditSummary {
    pub balances: Vec<BalanceView>,
    pub grants: Vec<GrantView>,
    /// The latest ledger entries asked for, in the order they happened.
    pub transactions: Vec<TransactionView>,
    /// The tenant's now, at which the balances were summed.
    pub now: DateTime<Utc>,
}

/// A recorded usage, as its first recording answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedUsage {
    pub feature_slug: String,
    pub outcome: UsageOutcome,
}

fn feature(raw: Option<&str>) -> Result<FeatureSlug, AppError> {
    let raw = raw.ok_or_else(|| AppError::invalid("featureSlug is required"))?;
    FeatureSlug::parse(raw).map_err(|e| AppError::invalid(e.to_string()))
}

impl App {
    /// Grants credits to the tenant's customer.
    pub async fn grant_credits(
        &self,
        metadata: &CommandMetadata,
        new: NewCreditGrant,
    ) -> Result<GrantView, AppError> {
        let tenant = metadata.tenant().clone();
        let customer_id: CustomerId = required_id(new.customer_id.as_deref(), "customerId")?;
        let feature_slug = feature(new.feature_slug.as_deref())?;
        let amount = new
            .amount
            .ok_or_else(|| AppError::invalid("amount is required"))?;
        let source = match new.source.as_deref() {
            None => GrantSource::Manual,
            Some(raw) => GrantSource::parse(raw)
                .filter(|source| {
                    matches!(
                        source,
                        GrantSource::Manual | GrantSource::Promotion | GrantSource::Refund
                    )
                })
                .ok_or_else(|| {
                    AppError::invalid("source must be one of manual, promotion, refund")
                })?,
        };
        self.own_customer(&tenant, &customer_id).await?;
        let id: CreditGrantId = metadata.new_id("credit grant");
        let command = CreditCommand::Grant {
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            feature_slug: feature_slug.clone(),
            grant: NewGrant {
                id: id.clone(),
                amount,
                source,
                priority: new.priority,
                starts_at: new.starts_at,
                expires_at: new.expires_at,
                reference_code: new.reference_code,
                notes: new.notes,
                feature_name: None,
            },
        };
        self.credits
            .execute(&ledger_id(&customer_id, &feature_slug), command, metadata)
            .await
            .map_err(command_error::<CreditLedger>)?;
        CreditBalancesProjection::grant(&self.pool, &tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::internal("Failed to grant credits", "no grant after grant"))
    }

    /// Records a usage of a feature by the customer: drawn from its credits; what they do
    /// not cover is overage when its plan bills the feature's usage, else the usage is refused
    /// whole (402 "Insufficient credits"). The same idempotency key answers the same.
    pub async fn record_usage(
        &self,
        metadata: &CommandMetadata,
        usage: NewUsage,
    ) -> Result<RecordedUsage, AppError> {
        let tenant = metadata.tenant().clone();
        let feature_slug = feature(usage.feature_slug.as_deref())?;
        let quantity = usage
            .quantity
            .ok_or_else(|| AppError::invalid("quantity is required"))?;
        let key = usage
            .idempotency_key
            .ok_or_else(|| AppError::invalid("idempotencyKey is required: 1 to 255 characters"))?;
        let customer_id = match (usage.customer_id, usage.external_customer_id) {
            (Some(id), None) => {
                let id: CustomerId =
                    parse_id(&id).map_err(|_| AppError::not_found(CUSTOMER_NOT_FOUND))?;
                self.own_customer(&tenant, &id).await?;
                id
            }
            (None, Some(external)) => {
                self.portal_customer(&metadata.principal, Some(&external))
                    .await?
                    .id
            }
            _ => {
                return Err(AppError::invalid(
                    "Give customerId or externalCustomerId, one of them",
                ))
            }
        };
        let ledger = ledger_id(&customer_id, &feature_slug);
        let usage_id: UsageId = metadata.new_id("usage");
        let key = key.trim().to_owned();
        let command = |overage_billed: bool| CreditCommand::RecordUsage {
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            feature_slug: feature_slug.clone(),
            usage_id: usage_id.clone(),
            idempotency_key: key.clone(),
            quantity,
            occurred_at: usage.timestamp,
            overage_billed,
        };
        // Most usage is covered by credits: whether the plan bills the feature's overage is
        // asked (two reads) only when they do not cover it.
        // Usages of a busy ledger that queue behind the one being appended are appended
        // together (`coalesced_commands.rs`): one commit for many, not one each.
        let mut recorded = self
            .credits
            .execute_coalesced(&ledger, command(false), metadata)
            .await;
        if matches!(
            recorded,
            Err(AggregateError::UserError(CreditError::InsufficientCredits))
        ) && self
            .bills_usage_of(&tenant, &customer_id, &feature_slug)
            .await?
        {
            recorded = self
                .credits
                .execute_coalesced(&ledger, command(true), metadata)
                .await;
        }
        let outcome = match recorded {
            Ok(after) => after
                .usage(&usage_id)
                .cloned()
                .ok_or_else(|| AppError::internal("Failed to record usage", "no usage after it"))?,
            // Recorded before under this key (the read model's claim, in the append): the
            // answer is the first recording's, and nothing is consumed again.
            Err(e) if is_claim(&e, ClaimKind::UsageKey) => self
                .first_usage(&tenant, &customer_id, &feature_slug, &key)
                .await?
                .ok_or_else(|| {
                    AppError::internal("Failed to record usage", "a key with no usage")
                })?,
            // Credits ran out since a first recording under this key: a repeat still gets
            // the first answer, not a 402.
            Err(AggregateError::UserError(CreditError::InsufficientCredits)) => {
                match self
                    .first_usage(&tenant, &customer_id, &feature_slug, &key)
                    .await?
                {
                    Some(first) => first,
                    None => {
                        return Err(command_error::<CreditLedger>(AggregateError::UserError(
                            CreditError::InsufficientCredits,
                        )))
                    }
                }
            }
            Err(e) => return Err(command_error::<CreditLedger>(e)),
        };
        Ok(RecordedUsage {
            feature_slug: feature_slug.to_string(),
            outcome,
        })
    }

    /// The answer of the usage first recorded under `key`, if one was.
    async fn first_usage(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
        feature_slug: &FeatureSlug,
        key: &str,
    ) -> Result<Option<UsageOutcome>, AppError> {
        let Some(first) = CreditBalancesProjection::usage_by_key(
            &self.pool,
            tenant,
            customer_id.as_str(),
            feature_slug.as_str(),
            key,
        )
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(UsageOutcome {
            usage_id: parse_id(first.usage_id.as_deref().unwrap_or_default())?,
            quantity: first.quantity.unwrap_or_default(),
            credits_consumed: -first.amount,
            overage_units: first.overage_units.unwrap_or_default(),
            remaining_after: first.remaining_after.unwrap_or_default(),
            at: first.at,
        }))
    }

    /// Revokes the tenant's grant `id`: what was left of it is forfeited.
    pub async fn revoke_credit_grant(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<GrantView, AppError> {
        let tenant = metadata.tenant().clone();
        let grant_id: CreditGrantId =
            parse_id(id).map_err(|_| AppError::not_found(GRANT_NOT_FOUND))?;
        let grant = CreditBalancesProjection::grant(&self.pool, &tenant, grant_id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(GRANT_NOT_FOUND))?;
        let ledger = format!("{}/{}", grant.customer_id, grant.feature_slug);
        self.credits
            .execute(
                &ledger,
                CreditCommand::Revoke {
                    tenant: tenant.clone(),
                    grant_id: grant_id.clone(),
                },
                metadata,
            )
            .await
            .map_err(command_error::<CreditLedger>)?;
        CreditBalancesProjection::grant(&self.pool, &tenant, grant_id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(GRANT_NOT_FOUND))
    }

    /// The customer's balance of each feature, at the tenant's now.
    pub async fn credit_balances(
        &self,
        principal: &Principal,
        customer_id: &str,
    ) -> Result<Vec<BalanceView>, AppError> {
        Ok(self
            .credit_summary(principal, customer_id, 0)
            .await?
            .balances)
    }

    /// What a customer's credits look like now: each feature's balance, every grant, and the
    /// latest `transactions` ledger entries — with one check that the customer is the
    /// tenant's.
    pub async fn credit_summary(
        &self,
        principal: &Principal,
        customer_id: &str,
        transactions: i64,
    ) -> Result<CreditSummary, AppError> {
        let customer_id: CustomerId =
            parse_id(customer_id).map_err(|_| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        let (tenant, id) = (&principal.tenant, customer_id.as_str());
        let now = self.clock.now_for(tenant);
        // The customer's check and its grants in one read; the balances are summed from them.
        let grants = CreditBalancesProjection::customer_grants(&self.statements, tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        Ok(CreditSummary {
            balances: balances_at(&grants, now),
            grants,
            transactions: if transactions > 0 {
                CreditBalancesProjection::latest_transactions(&self.pool, tenant, id, transactions)
                    .await?
            } else {
                Vec::new()
            },
            now,
        })
    }

    /// The customer's grants, of one feature or all, oldest first.
    pub async fn credit_grants(
        &self,
        principal: &Principal,
        customer_id: &str,
        feature_slug: Option<&str>,
    ) -> Result<Vec<GrantView>, AppError> {
        let customer_id: CustomerId =
            parse_id(customer_id).map_err(|_| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        self.own_customer(&principal.tenant, &customer_id).await?;
        Ok(CreditBalancesProjection::grants(
            &self.pool,
            &principal.tenant,
            customer_id.as_str(),
            feature_slug,
        )
        .await?)
    }

    /// The customer's ledger: grants, usage, expiries and revocations in the order they
    /// happened, a page after `starting_after`.
    pub async fn credit_transactions(
        &self,
        principal: &Principal,
        customer_id: &str,
        feature_slug: Option<&str>,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<TransactionView>, bool), AppError> {
        let customer_id: CustomerId =
            parse_id(customer_id).map_err(|_| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        self.own_customer(&principal.tenant, &customer_id).await?;
        if starting_after.is_some_and(|id| id.len() > 80 || id.chars().any(char::is_control)) {
            return Err(AppError::invalid("startingAfter is not a transaction id"));
        }
        Ok(CreditBalancesProjection::transactions(
            &self.pool,
            &principal.tenant,
            customer_id.as_str(),
            feature_slug,
            starting_after,
            limit,
        )
        .await?)
    }

    /// Grants `subscription` its plan's credits for the period from `period_start` (source
    /// `subscription`), expiring at `period_end` unless the allowance rolls over. Each grant's
    /// id is derived from the subscription, period and feature, so billing a period again
    /// (a resumed flow, a racing scheduler) grants nothing twice.
    pub(crate) async fn grant_period_allowances(
        &self,
        metadata: &CommandMetadata,
        subscription: &Subscription,
        period_start: DateTime<Utc>,
        period_end: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        let (Some(subscription_id), Some(customer_id), Some(plan)) = (
            subscription.id.as_ref(),
            subscription.customer_id.as_ref(),
            subscription.plan.as_ref(),
        ) else {
            return Ok(());
        };
        let Some(plan) =
            PlanListProjection::get(&self.pool, &tenant, plan.plan_id.as_str()).await?
        else {
            return Ok(());
        };
        let allowances: Vec<CreditAllowance> =
            serde_json::from_value(plan.credits).unwrap_or_default();
        for allowance in allowances {
            let digest = Sha256::digest(format!(
                "{subscription_id}:credits:{}:{}",
                allowance.feature_slug,
                period_start.timestamp_micros()
            ));
            let mut entropy = [0u8; 10];
            entropy.copy_from_slice(&digest[..10]);
            let id = CreditGrantId::derived(
                u64::try_from(period_start.timestamp_millis()).unwrap_or(0),
                &entropy,
            );
            let command = CreditCommand::Grant {
                tenant: tenant.clone(),
                customer_id: customer_id.clone(),
                feature_slug: allowance.feature_slug.clone(),
                grant: NewGrant {
                    id,
                    amount: allowance.amount,
                    source: GrantSource::Subscription,
                    priority: None,
                    starts_at: Some(period_start),
                    expires_at: (!allowance.rollover).then_some(period_end),
                    reference_code: Some(subscription_id.to_string()),
                    notes: None,
                    feature_name: Some(allowance.name.clone()),
                },
            };
            match self
                .credits
                .execute(
                    &ledger_id(customer_id, &allowance.feature_slug),
                    command,
                    metadata,
                )
                .await
            {
                Ok(_) | Err(AggregateError::UserError(CreditError::GrantExists)) => {}
                Err(e) => return Err(command_error::<CreditLedger>(e)),
            }
        }
        Ok(())
    }

    /// Whether the customer's live subscription's plan bills usage of `feature_slug`.
    async fn bills_usage_of(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
        feature_slug: &FeatureSlug,
    ) -> Result<bool, AppError> {
        let Some(subscription) =
            SubscriptionListProjection::live_for_customer(&self.pool, tenant, customer_id).await?
        else {
            return Ok(false);
        };
        let Some(plan) =
            PlanListProjection::get(&self.pool, tenant, subscription.plan_id.as_str()).await?
        else {
            return Ok(false);
        };
        Ok(invoiced_components(&plan.pricing_data)
            .iter()
            .any(|component| {
                matches!(component, PricingComponent::Usage { feature_slug: slug, .. }
                    if slug == feature_slug.as_str())
            }))
    }

    async fn own_customer(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<(), AppError> {
        let mut connection = self.statements.acquire().await?;
        let found =
            CustomerListProjection::get(&mut *connection, tenant, customer_id.as_str()).await;
        connection.give_back(&found);
        found?
            .map(|_| ())
            .ok_or_else(|| AppError::not_found(CUSTOMER_NOT_FOUND))
    }
}
