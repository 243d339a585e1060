//! Organizations: a primary customer, billed for the organization, and the customers holding
//! seats under it. `POST /v1/organizations`, `POST /v1/organizations/{id}/members`, and the
//! portal's `GET /v1/customers/{id}/organization-customers`.
//!
//! A customer belongs to at most one organization. That rule spans organizations, so the log
//! refuses it at append time (the `organization_members` key), as a claim.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use domain::id::{CustomerId, OrganizationId};
use domain::organization::{Organization, OrganizationCommand, OrganizationError};
use domain::tenant::Tenant;
use projections::customer_list::CustomerListProjection;
use projections::organization_list::OrganizationListProjection;
use projections::{ClaimConflict, ClaimKind};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::commands::CommandMetadata;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::portal_access::session_owns;
use crate::routes::customers::{self, NOT_FOUND as CUSTOMER_NOT_FOUND};
use crate::state::AppState;

pub(crate) const NOT_FOUND: &str = "Organization not found";
pub(crate) const ALREADY_IN_ONE: &str = "Customer already belongs to an organization";
const FAILED: &str = "Failed to update organization";

/// An organization as the merchant's endpoints show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationBody {
    #[schema(example = "org_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    #[schema(example = "Acme, Inc.")]
    pub name: String,
    pub primary_customer_id: String,
    pub created_at: DateTime<Utc>,
}

impl OrganizationBody {
    fn from_aggregate(organization: &Organization) -> Option<Self> {
        Some(Self {
            id: organization.id.as_ref()?.to_string(),
            name: organization.name.clone()?,
            primary_customer_id: organization.primary_customer_id.as_ref()?.to_string(),
            created_at: organization.created_at?,
        })
    }
}

/// One customer of an organization, as the seed lists them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationCustomer {
    pub id: String,
    /// `primary` or `member`.
    #[schema(example = "primary")]
    pub org_role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationEnvelope {
    pub organization: OrganizationBody,
}

/// The organization with its customers, primary first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationMembersEnvelope {
    pub organization: OrganizationBody,
    pub customers: Vec<OrganizationCustomer>,
}

/// The seed's organization-customers answer: the organization's id and name only.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationSummary {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationCustomersEnvelope {
    pub organization: OrganizationSummary,
    pub customers: Vec<OrganizationCustomer>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    /// Required.
    #[schema(example = "Acme, Inc.")]
    pub name: Option<String>,
    /// Required: a live customer of the merchant in no organization yet.
    pub primary_customer_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMemberRequest {
    /// Required: a live customer of the merchant in no organization yet.
    pub customer_id: Option<String>,
}

/// Maps an organization command's failure.
fn organization_error(error: AggregateError<OrganizationError>) -> ApiError {
    match error {
        AggregateError::UserError(e @ OrganizationError::NotFound) => {
            ApiError::not_found(e.to_string())
        }
        AggregateError::UserError(e @ OrganizationError::NameRequired) => {
            ApiError::bad_request(e.to_string())
        }
        AggregateError::UserError(
            e @ (OrganizationError::AlreadyMember | OrganizationError::AlreadyExists),
        ) => ApiError::conflict(e.to_string()),
        AggregateError::AggregateConflict => ApiError::conflict(
            "The organization was changed by concurrent requests; retry the request",
        ),
        AggregateError::UnexpectedError(e) => match e.downcast_ref::<ClaimConflict>() {
            Some(ClaimConflict {
                kind: ClaimKind::OrganizationMember,
            }) => ApiError::conflict(ALREADY_IN_ONE),
            _ => ApiError::internal(FAILED, e),
        },
        other => ApiError::internal(FAILED, other),
    }
}

fn parse_id(id: &str) -> Result<OrganizationId, ApiError> {
    OrganizationId::parse(id).map_err(|_| {
        ApiError::bad_request(
            "Invalid organization ID: expected \"org_\" followed by letters, digits or underscores",
        )
    })
}

/// The customer a body names, which must be a live customer of the tenant.
async fn live_customer(
    state: &AppState,
    tenant: &Tenant,
    id: &Option<String>,
    field: &str,
) -> Result<CustomerId, ApiError> {
    let id = id
        .as_deref()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{field} is required")))?;
    let id = customers::parse_id(id)?;
    CustomerListProjection::get(&state.pool, tenant, id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(CUSTOMER_NOT_FOUND))?;
    Ok(id)
}

/// The organization's customers that are still live, primary first, then in the order they
/// joined. A deleted customer keeps its membership in the log but is gone from every answer.
async fn live_members(
    state: &AppState,
    tenant: &Tenant,
    members: Vec<(String, String)>,
) -> Result<Vec<OrganizationCustomer>, ApiError> {
    let ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
    let live = CustomerListProjection::live_ids(&state.pool, tenant, &ids).await?;
    Ok(members
        .into_iter()
        .filter(|(id, _)| live.contains(id))
        .map(|(id, org_role)| OrganizationCustomer { id, org_role })
        .collect())
}

/// Create an organization with its primary customer.
#[utoipa::path(post, path = "/v1/organizations", tag = "organizations",
    request_body = CreateOrganizationRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 201, body = OrganizationEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_organization(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    JsonBody(body): JsonBody<CreateOrganizationRequest>,
) -> Result<(StatusCode, Json<OrganizationEnvelope>), ApiError> {
    let tenant = metadata.principal.tenant.clone();
    let primary_customer_id = live_customer(
        &state,
        &tenant,
        &body.primary_customer_id,
        "primaryCustomerId",
    )
    .await?;
    let id = OrganizationId::generate();
    let command = OrganizationCommand::CreateOrganization {
        id: id.clone(),
        tenant,
        name: body.name,
        primary_customer_id,
    };
    let organization = state
        .organizations
        .execute_new(id.as_str(), command, &metadata)
        .await
        .map_err(organization_error)?;
    let organization = OrganizationBody::from_aggregate(&organization)
        .ok_or_else(|| ApiError::internal(FAILED, "no organization after create"))?;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationEnvelope { organization }),
    ))
}

/// Add a customer to an organization as a seat member.
#[utoipa::path(post, path = "/v1/organizations/{id}/members", tag = "organizations",
    request_body = AddMemberRequest,
    params(("id" = String, Path, description = "Organization ID"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = OrganizationMembersEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddMemberRequest>,
) -> Result<Json<OrganizationMembersEnvelope>, ApiError> {
    let tenant = metadata.principal.tenant.clone();
    let id = parse_id(&id)?;
    // The organization named in the path answers first: a missing one is the 404 to give,
    // whatever the body says.
    let existing = state
        .organizations
        .current(id.as_str())
        .await
        .map_err(organization_error)?;
    if !existing.exists() || existing.tenant.as_ref() != Some(&tenant) {
        return Err(ApiError::not_found(NOT_FOUND));
    }
    let customer_id = live_customer(&state, &tenant, &body.customer_id, "customerId").await?;
    let command = OrganizationCommand::AddOrganizationMember {
        tenant: tenant.clone(),
        customer_id,
    };
    let organization = state
        .organizations
        .execute(id.as_str(), command, &metadata)
        .await
        .map_err(organization_error)?;
    let members = organization
        .members()
        .into_iter()
        .map(|(id, role)| (id.to_string(), role.as_str().to_owned()))
        .collect();
    let customers = live_members(&state, &tenant, members).await?;
    let organization = OrganizationBody::from_aggregate(&organization)
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(OrganizationMembersEnvelope {
        organization,
        customers,
    }))
}

/// Get the organization and all customers (primary + seat members) of a customer's
/// organization. Takes a secret key or a portal session token of that customer.
#[utoipa::path(get, path = "/v1/customers/{id}/organization-customers", tag = "portal",
    params(("id" = String, Path, description = "Customer ID")),
    responses((status = 200, body = OrganizationCustomersEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn organization_customers(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<OrganizationCustomersEnvelope>, ApiError> {
    let id = customers::parse_id(&id)?;
    if !session_owns(&principal, id.as_str()) {
        return Err(ApiError::not_found(CUSTOMER_NOT_FOUND));
    }
    let tenant = &principal.tenant;
    CustomerListProjection::get(&state.pool, tenant, id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(CUSTOMER_NOT_FOUND))?;
    let membership =
        OrganizationListProjection::membership(&state.pool, &tenant.key(), id.as_str())
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let organization =
        OrganizationListProjection::get(&state.pool, &tenant.key(), &membership.organization_id)
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    let members = OrganizationListProjection::members(&state.pool, &organization.id)
        .await?
        .into_iter()
        .map(|member| (member.customer_id, member.role))
        .collect();
    let customers = live_members(&state, tenant, members).await?;
    Ok(Json(OrganizationCustomersEnvelope {
        organization: OrganizationSummary {
            id: organization.id,
            name: organization.name,
        },
        customers,
    }))
}
