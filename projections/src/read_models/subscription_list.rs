//! The `subscription_list` read model: every subscription with its status, projected inline.
//! Its partial unique index keeps a customer to one subscription that is not canceled.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::id::{CustomerId, PlanId, SubscriptionId};
use domain::subscription::{period, Subscription, SubscriptionEvent, SubscriptionStatus};
use domain::tenant::Tenant;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

pub const TABLE: &str = "subscription_list";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionView {
    #[sqlx(try_from = "String")]
    pub id: SubscriptionId,
    #[sqlx(try_from = "String")]
    pub customer_id: CustomerId,
    #[sqlx(try_from = "String")]
    pub plan_id: PlanId,
    pub payment_method_id: Option<String>,
    pub status: String,
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub quantity: i32,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
}

const COLUMNS: &str = "id, customer_id, plan_id, payment_method_id, status, \
    grace_period_ends_at, started_at, canceled_at, quantity, trial_ends_at, \
    current_period_start, current_period_end, cancel_at_period_end";

#[derive(Debug, Clone, Copy, Default)]
pub struct SubscriptionListProjection;

impl SubscriptionListProjection {
    /// The customer's subscription that is not canceled, if any.
    pub async fn live_for_customer(
        pool: &PgPool,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<Option<SubscriptionView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} \
             WHERE tenant = $1 AND customer_id = $2 AND status <> 'canceled'"
        ))
        .bind(tenant.key())
        .bind(customer_id.as_str())
        .fetch_optional(pool)
        .await
    }
}

impl InlineProjection for SubscriptionListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "subscription_list_pkey"
    }

    fn name(&self) -> &'static str {
        TABLE
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut row = RowWrite::default();
        for event in events {
            let Some(decoded) = decode::<Subscription>(event)? else {
                continue;
            };
            let at = decoded.at();
            match decoded {
                SubscriptionEvent::SubscriptionStarted {
                    id,
                    tenant,
                    customer_id,
                    plan,
                    payment_method_id,
                    quantity,
                    trial_ends_at,
                    current_period_start,
                    current_period_end,
                    at,
                } => {
                    // As the aggregate derives them for a subscription started before periods
                    // were recorded.
                    let anchor = trial_ends_at.unwrap_or(at);
                    let period_end = current_period_end
                        .unwrap_or_else(|| period::period_end(anchor, plan.interval, 0));
                    row.set("quantity", Cell::Int(i64::from(quantity)));
                    row.set("trial_ends_at", Cell::Time(trial_ends_at));
                    row.set(
                        "current_period_start",
                        Cell::Time(Some(current_period_start.unwrap_or(at))),
                    );
                    row.set("current_period_end", Cell::Time(Some(period_end)));
                    row.set("cancel_at_period_end", Cell::Bool(false));
                    row.created = true;
                    row.set("id", Cell::text(id.as_str()));
                    row.set("tenant", Cell::text(tenant.key()));
                    row.set("customer_id", Cell::text(customer_id.as_str()));
                    row.set("plan_id", Cell::text(plan.plan_id.as_str()));
                    row.set(
                        "payment_method_id",
                        Cell::Text(payment_method_id.map(|id| id.to_string())),
                    );
                    row.set("status", Cell::text(SubscriptionStatus::Active.as_str()));
                    row.set("grace_period_ends_at", Cell::Time(None));
                    row.set("started_at", Cell::Time(Some(at)));
                    row.set("canceled_at", Cell::Time(None));
                }
                SubscriptionEvent::SubscriptionPaymentMethodChanged { to, .. } => {
                    row.set("payment_method_id", Cell::text(to.as_str()));
                }
                SubscriptionEvent::SubscriptionPastDue {
                    grace_period_ends_at,
                    ..
                } => {
                    row.set("status", Cell::text(SubscriptionStatus::PastDue.as_str()));
                    row.set(
                        "grace_period_ends_at",
                        Cell::Time(Some(grace_period_ends_at)),
                    );
                }
                SubscriptionEvent::SubscriptionReactivated { .. } => {
                    row.set("status", Cell::text(SubscriptionStatus::Active.as_str()));
                    row.set("grace_period_ends_at", Cell::Time(None));
                }
                SubscriptionEvent::SubscriptionRenewed {
                    period_start,
                    period_end,
                    ..
                } => {
                    row.set("current_period_start", Cell::Time(Some(period_start)));
                    row.set("current_period_end", Cell::Time(Some(period_end)));
                }
                SubscriptionEvent::SubscriptionCancelScheduled { .. } => {
                    row.set("cancel_at_period_end", Cell::Bool(true));
                }
                SubscriptionEvent::SubscriptionCanceled { at } => {
                    row.set("cancel_at_period_end", Cell::Bool(false));
                    row.set("status", Cell::text(SubscriptionStatus::Canceled.as_str()));
                    row.set("grace_period_ends_at", Cell::Time(None));
                    row.set("canceled_at", Cell::Time(Some(at)));
                }
            }
            row.set("updated_at", Cell::Time(Some(at)));
        }
        if let Some(first) = events.first() {
            row.push(append, TABLE, first.aggregate_id.clone());
        }
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        (constraint == "subscription_list_one_live").then_some(ClaimConflict {
            kind: ClaimKind::LiveSubscription,
        })
    }
}
