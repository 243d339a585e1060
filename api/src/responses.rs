//! Answers shared by every resource, or by two: a top-up is the top-ups' and the portal's
//! credits view's.

use chrono::{DateTime, Utc};
use projections::read_models::top_up_list::TopUpView;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"success": true}`, the seed's answer to a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub fn yes() -> axum::Json<Self> {
        axum::Json(Self { success: true })
    }
}

/// Every error: `{"error": "...", "code": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Customer not found or access denied")]
    pub error: String,
    #[schema(example = "not_found")]
    pub code: String,
}

/// A top-up, as `/v1/credits/top-ups` and the portal's credits view answer it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopUpBody {
    pub id: String,
    pub feature_slug: String,
    pub name: String,
    pub credits_per_unit: i64,
    pub unit_amount_cents: i64,
    pub currency: String,
    /// The plans it is offered on; empty: every plan in its currency.
    pub plan_ids: Vec<String>,
    pub expires_after_days: Option<i32>,
    pub max_quantity: i64,
    pub created_at: DateTime<Utc>,
}

impl From<TopUpView> for TopUpBody {
    fn from(view: TopUpView) -> Self {
        Self {
            plan_ids: view.plan_ids(),
            id: view.id.to_string(),
            feature_slug: view.feature_slug,
            name: view.name,
            credits_per_unit: view.credits_per_unit,
            unit_amount_cents: view.unit_amount_cents,
            currency: view.currency,
            expires_after_days: view.expires_after_days,
            max_quantity: view.max_quantity,
            created_at: view.created_at,
        }
    }
}
