//! The `top_up_list` read model: the credits a tenant offers its customers to buy, for
//! `GET /v1/credits/top-ups` and the portal's credits view. Projected inline.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::id::TopUpId;
use domain::tenant::Tenant;
use domain::top_up::{TopUp, TopUpEvent};
use serde_json::Value;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};

pub const TABLE: &str = "top_up_list";

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TopUpView {
    #[sqlx(try_from = "String")]
    pub id: TopUpId,
    pub feature_slug: String,
    pub name: String,
    pub credits_per_unit: i64,
    pub unit_amount_cents: i64,
    pub currency: String,
    /// `["plan_…"]`; empty: offered on every plan in its currency.
    pub plan_ids: Value,
    pub expires_after_days: Option<i32>,
    pub max_quantity: i64,
    pub created_at: DateTime<Utc>,
}

impl TopUpView {
    pub fn plan_ids(&self) -> Vec<String> {
        serde_json::from_value(self.plan_ids.clone()).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, feature_slug, name, credits_per_unit, unit_amount_cents, currency, \
    plan_ids, expires_after_days, max_quantity, created_at";

#[derive(Debug, Clone, Copy, Default)]
pub struct TopUpListProjection;

impl TopUpListProjection {
    /// The tenant's top-ups, oldest first: those after `starting_after`, at most `limit` (all
    /// without one), and whether more follow.
    pub async fn list(
        pool: &PgPool,
        tenant: &Tenant,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Vec<TopUpView>, bool), sqlx::Error> {
        // Ids are UUIDv7: id order is creation order, and the cursor is a keyset one.
        let mut top_ups: Vec<TopUpView> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(tenant.key())
        .bind(starting_after.unwrap_or(""))
        .bind(limit.map(|l| l + 1))
        .fetch_all(pool)
        .await?;
        let has_more = limit.is_some_and(|l| top_ups.len() as i64 > l);
        if let Some(limit) = limit {
            top_ups.truncate(limit as usize);
        }
        Ok((top_ups, has_more))
    }

    /// The tenant's top-up `id`; another tenant's is not found.
    pub async fn get(
        pool: &PgPool,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<TopUpView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.key())
        .bind(id)
        .fetch_optional(pool)
        .await
    }
}

impl InlineProjection for TopUpListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "top_up_list_pkey"
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
            let Some(TopUpEvent::TopUpCreated {
                id: top_up_id,
                tenant,
                feature_slug,
                name,
                credits_per_unit,
                unit_amount_cents,
                currency,
                plan_ids,
                expires_after_days,
                max_quantity,
                at,
            }) = decode::<TopUp>(event)?
            else {
                continue;
            };
            row.created = true;
            row.set("id", Cell::text(top_up_id.as_str()));
            row.set("tenant", Cell::text(tenant.key()));
            row.set("feature_slug", Cell::text(feature_slug.as_str()));
            row.set("name", Cell::text(name));
            row.set("credits_per_unit", Cell::Int(credits_per_unit));
            row.set("unit_amount_cents", Cell::Int(unit_amount_cents));
            row.set("currency", Cell::text(currency.as_str()));
            row.set(
                "plan_ids",
                Cell::Json(serde_json::to_value(plan_ids).unwrap_or_default()),
            );
            row.set(
                "expires_after_days",
                Cell::OptionalInt(expires_after_days.map(i64::from)),
            );
            row.set("max_quantity", Cell::Int(max_quantity));
            row.set("created_at", Cell::Time(Some(at)));
            id = Some(top_up_id.to_string());
        }
        if let Some(id) = id {
            row.push(append, TABLE, id);
        }
        Ok(())
    }
}
