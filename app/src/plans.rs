//! Plans: what a merchant sells, in one currency, with its pricing components and the credits
//! it grants.

use domain::id::PlanId;
use domain::plan::{AllowanceInput, Plan, PlanCommand};
use projections::read_models::plan_list::{PlanListProjection, PlanView};
use serde_json::Value;

use crate::context::App;
use crate::error::AppError;
use crate::ids::parse_id;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::command_error;

/// What creating a plan takes; the rules check each field.
#[derive(Debug, Clone, Default)]
pub struct NewPlan {
    pub name: Option<String>,
    pub description: Option<String>,
    pub currency: Option<String>,
    pub pricing_data: Option<Value>,
    pub credit_allowance: Option<i64>,
    /// `month` (the default) or `year`.
    pub interval: Option<String>,
    pub trial_days: Option<i64>,
    /// The credits it grants each period, per feature.
    pub credits: Vec<AllowanceInput>,
}

impl App {
    /// Creates a plan, with a price of its own.
    pub async fn create_plan(
        &self,
        metadata: &CommandMetadata,
        new: NewPlan,
    ) -> Result<Plan, AppError> {
        let id: PlanId = metadata.new_id("plan");
        let command = PlanCommand::CreatePlan {
            id: id.clone(),
            price_id: metadata.new_id("price"),
            tenant: metadata.tenant().clone(),
            name: new.name,
            description: new.description,
            currency: new.currency,
            pricing_data: new.pricing_data,
            credit_allowance: new.credit_allowance,
            interval: new.interval,
            trial_days: new.trial_days,
            credits: new.credits,
        };
        let plan = self
            .plans
            .execute_new(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<Plan>)?;
        if plan.id.is_none() {
            return Err(AppError::internal(
                "Failed to create plan",
                "no plan after create",
            ));
        }
        Ok(plan)
    }

    /// The tenant's plans, oldest first, a page at a time, and whether more follow.
    pub async fn list_plans(
        &self,
        principal: &Principal,
        limit: Option<i64>,
        starting_after: Option<&str>,
    ) -> Result<(Vec<PlanView>, bool), AppError> {
        if let Some(limit) = limit {
            if !(1..=1000).contains(&limit) {
                return Err(AppError::invalid("limit must be between 1 and 1000"));
            }
        }
        if let Some(after) = starting_after {
            parse_id::<PlanId>(after)?;
        }
        Ok(PlanListProjection::list(&self.pool, &principal.tenant, starting_after, limit).await?)
    }
}
