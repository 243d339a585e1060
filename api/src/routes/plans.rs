//! Plans: what a merchant sells, in one currency, with its pricing components and the credits
//! it grants. `POST /v1/plans` and `GET /v1/plans`.

use app::plans::NewPlan;
use app::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::plan::AllowanceInput;
use domain::plan::Plan;
use projections::read_models::plan_list::PlanView;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody, QueryParams};
use crate::openapi::formats;
use crate::responses::ErrorBody;

const CREATE_FAILED: &str = "Failed to create plan";

/// A plan as every endpoint shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanBody {
    #[schema(example = "plan_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    #[schema(example = "price_0192f1c2a7b47c8e9a1d2b3c4d5e6f71")]
    pub price_id: String,
    #[schema(example = "Pro")]
    pub name: String,
    pub description: Option<String>,
    #[schema(example = "USD")]
    pub currency: String,
    /// As the merchant sent it: an object with a `components` array.
    #[schema(value_type = Object, example = json!({"components": []}))]
    pub pricing_data: Value,
    /// Credits granted per period, if the plan grants any.
    pub credit_allowance: Option<i64>,
    /// How long a period is: `month` or `year`.
    #[schema(example = "month")]
    pub interval: String,
    /// Days of trial before the first invoice.
    pub trial_days: i64,
    /// The credits it grants each period, per feature.
    #[schema(value_type = Vec<Object>)]
    pub credits: Value,
    pub created_at: DateTime<Utc>,
}

impl From<PlanView> for PlanBody {
    fn from(view: PlanView) -> Self {
        Self {
            id: view.id.to_string(),
            price_id: view.price_id.to_string(),
            name: view.name,
            description: view.description,
            currency: view.currency,
            pricing_data: view.pricing_data,
            credit_allowance: view.credit_allowance,
            interval: view.interval,
            trial_days: i64::from(view.trial_days),
            credits: view.credits,
            created_at: view.created_at,
        }
    }
}

impl PlanBody {
    /// The plan as its create left it; `None` for a plan that was never created.
    fn from_aggregate(plan: Plan) -> Option<Self> {
        Some(Self {
            id: plan.id?.to_string(),
            price_id: plan.price_id?.to_string(),
            name: plan.name?,
            description: plan.description,
            currency: plan.currency?.to_string(),
            pricing_data: plan.pricing_data?,
            credit_allowance: plan.credit_allowance,
            interval: plan.interval.as_str().to_owned(),
            trial_days: i64::from(plan.trial_days),
            credits: serde_json::to_value(&plan.credits).ok()?,
            created_at: plan.created_at?,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanEnvelope {
    pub plan: PlanBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanListEnvelope {
    pub plans: Vec<PlanBody>,
    /// True when `limit` cut the list short; pass the last id as `startingAfter` for more.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPlansQuery {
    /// Page size, 1 to 1000. Without it the whole list is returned.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return plans after this plan id (keyset pagination).
    #[param(value_type = Option<formats::PlanId>)]
    pub starting_after: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePlanRequest {
    #[schema(value_type = formats::RequiredText, required = true, example = "Pro")]
    pub name: Option<String>,
    /// Blank leaves the plan without one.
    #[schema(value_type = Option<formats::Text>)]
    pub description: Option<String>,
    #[schema(value_type = formats::CurrencyCode, required = true)]
    pub currency: Option<String>,
    #[schema(value_type = formats::PricingData, required = true)]
    pub pricing_data: Option<Value>,
    /// Credits granted per period; zero or more.
    #[schema(minimum = 0)]
    pub credit_allowance: Option<i64>,
    /// `month` (the default) or `year`.
    #[schema(value_type = Option<String>, pattern = "^(month|year)$")]
    pub interval: Option<String>,
    /// Days of trial before the first invoice, 0 to 730.
    #[schema(minimum = 0, maximum = 730)]
    pub trial_days: Option<i64>,
    /// Credits granted each period (source `subscription`), expiring at its end unless
    /// `rollover`.
    pub credits: Option<Vec<AllowanceRequest>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowanceRequest {
    #[schema(required = true, example = "api_calls")]
    pub feature_slug: Option<String>,
    /// The slug when not given.
    pub name: Option<String>,
    #[schema(required = true, minimum = 1, maximum = 1000000000000_i64)]
    pub amount: Option<i64>,
    /// Unused credits carry over to the next period instead of expiring at its end.
    pub rollover: Option<bool>,
}

/// Create a plan, with a price of its own.
#[utoipa::path(post, path = "/v1/plans", tag = "plans", request_body = CreatePlanRequest,
    responses((status = 201, body = PlanEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_plan(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<CreatePlanRequest>,
) -> Result<(StatusCode, Json<PlanEnvelope>), ApiError> {
    let new = NewPlan {
        name: body.name,
        description: body.description,
        currency: body.currency,
        pricing_data: body.pricing_data,
        credit_allowance: body.credit_allowance,
        interval: body.interval,
        trial_days: body.trial_days,
        credits: body
            .credits
            .unwrap_or_default()
            .into_iter()
            .map(|allowance| AllowanceInput {
                feature_slug: allowance.feature_slug,
                name: allowance.name,
                amount: allowance.amount,
                rollover: allowance.rollover,
            })
            .collect(),
    };
    let plan = app.create_plan(&metadata, new).await?;
    let plan = PlanBody::from_aggregate(plan)
        .ok_or_else(|| ApiError::internal(CREATE_FAILED, "no plan after create"))?;
    Ok((StatusCode::CREATED, Json(PlanEnvelope { plan })))
}

/// Every plan of the merchant, oldest first.
#[utoipa::path(get, path = "/v1/plans", tag = "plans", params(ListPlansQuery),
    responses((status = 200, body = PlanListEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_plans(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<ListPlansQuery>,
) -> Result<Json<PlanListEnvelope>, ApiError> {
    let (plans, has_more) = app
        .list_plans(&principal, query.limit, query.starting_after.as_deref())
        .await?;
    Ok(Json(PlanListEnvelope {
        plans: plans.into_iter().map(PlanBody::from).collect(),
        has_more,
    }))
}
