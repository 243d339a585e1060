//! The customer-portal endpoints of the seed, found by the merchant's `externalCustomerId`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use projections::catch_up;
use projections::portal_overview::{self, PortalOverview, PortalOverviewProjection};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::portal_access::portal_customer;
use crate::routes::customers::NOT_FOUND;
use crate::state::AppState;

/// How long a portal read waits for its projection to apply writes that committed before it.
/// Past this the read answers what the projection holds, and says so in the log.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalQuery {
    /// The merchant's own id of the customer.
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalEnvelope {
    #[schema(value_type = Object)]
    pub portal: PortalOverview,
}

/// Waits until `portal_overview` has applied every event of the tenant that committed before
/// this call: a write acknowledged to the caller shows in the read that follows it.
async fn caught_up(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    let tenant = principal.tenant.key();
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    while catch_up::behind_for_tenant(&state.pool, portal_overview::TABLE, &tenant).await? {
        if started.elapsed() > FRESHNESS_WAIT {
            tracing::warn!("portal_overview is behind the log; answering what it holds");
            break;
        }
        state.portal.nudge();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

#[utoipa::path(get, path = "/v1/customers/portal/overview", tag = "portal", params(PortalQuery),
    responses((status = 200, body = PortalEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn overview(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(query): QueryParams<PortalQuery>,
) -> Result<Json<PortalEnvelope>, ApiError> {
    let customer =
        portal_customer(&state, &principal, query.external_customer_id.as_deref()).await?;
    caught_up(&state, &principal).await?;
    let portal = PortalOverviewProjection::by_customer(&state.pool, &customer.id)
        .await?
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(PortalEnvelope { portal }))
}
