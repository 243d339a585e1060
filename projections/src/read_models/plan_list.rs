//! The `plan_list` read model: a tenant's plans, for `GET /v1/plans` and for starting
//! subscriptions. Projected inline.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::id::{PlanId, PriceId};
use domain::plan::{Plan, PlanEvent};
use domain::tenant::Tenant;
use serde_json::Value;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};

pub const TABLE: &str = "plan_list";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlanView {
    #[sqlx(try_from = "String")]
    pub id: PlanId,
    #[sqlx(try_from = "String")]
    pub price_id: PriceId,
    pub name: String,
    pub description: Option<String>,
    pub currency: String,
    pub pricing_data: Value,
    pub credit_allowance: Option<i64>,
    pub interval: String,
    pub trial_days: i32,
    /// `[{featureSlug, name, amount, rollover}]`: the credits it grants each period.
    pub credits: Value,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, price_id, name, description, currency, pricing_data, \
    credit_allowance, interval, trial_days, credits, created_at";

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanListProjection;

impl PlanListProjection {
    /// The tenant's plans, oldest first: those after plan `starting_after`, at most `limit`
    /// (all without one), and whether more follow.
    pub async fn list(
        pool: &PgPool,
        tenant: &Tenant,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Vec<PlanView>, bool), sqlx::Error> {
        // Ids are UUIDv7: id order is creation order, and the cursor is a keyset one.
        let mut plans: Vec<PlanView> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(tenant.key())
        .bind(starting_after.unwrap_or(""))
        // One extra row tells whether another page follows.
        .bind(limit.map(|l| l + 1))
        .fetch_all(pool)
        .await?;
        let has_more = limit.is_some_and(|l| plans.len() as i64 > l);
        if let Some(limit) = limit {
            plans.truncate(limit as usize);
        }
        Ok((plans, has_more))
    }

    /// The tenant's plan `id`; another tenant's is not found.
    pub async fn get(
        pool: &PgPool,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<PlanView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.key())
        .bind(id)
        .fetch_optional(pool)
        .await
    }
}

impl InlineProjection for PlanListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "plan_list_pkey"
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
        let mut id = None;
        for event in events {
            let Some(PlanEvent::PlanCreated {
                id: plan_id,
                price_id,
                tenant,
                name,
                description,
                currency,
                pricing_data,
                credit_allowance,
                interval,
                trial_days,
                credits,
                at,
            }) = decode::<Plan>(event)?
            else {
                continue;
            };
            row.created = true;
            row.set("id", Cell::text(plan_id.as_str()));
            row.set("tenant", Cell::text(tenant.key()));
            row.set("price_id", Cell::text(price_id.as_str()));
            row.set("name", Cell::text(name));
            row.set("description", Cell::Text(description));
            row.set("currency", Cell::text(currency.as_str()));
            row.set("pricing_data", Cell::Json(pricing_data));
            row.set("credit_allowance", Cell::OptionalInt(credit_allowance));
            row.set("interval", Cell::text(interval.as_str()));
            row.set("trial_days", Cell::Int(i64::from(trial_days)));
            row.set(
                "credits",
                Cell::Json(serde_json::to_value(credits).unwrap_or_default()),
            );
            row.set("created_at", Cell::Time(Some(at)));
            id = Some(plan_id.to_string());
        }
        if let Some(id) = id {
            row.push(append, TABLE, id);
        }
        Ok(())
    }
}
