//! Organizations: a primary customer, billed for the organization, and the customers holding
//! seats under it. `POST /v1/organizations`, `POST /v1/organizations/{id}/members`, and the
//! portal's `GET /v1/customers/{id}/organization-customers`.

use app::organizations::{OrganizationMember, NOT_FOUND};
use app::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::organization::Organization;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody};
use crate::openapi::formats;
use crate::responses::ErrorBody;

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
    #[schema(value_type = formats::RequiredText, required = true, example = "Acme, Inc.")]
    pub name: Option<String>,
    /// A live customer of the merchant in no organization yet.
    #[schema(value_type = formats::CustomerId, required = true)]
    pub primary_customer_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddMemberRequest {
    /// A live customer of the merchant in no organization yet.
    #[schema(value_type = formats::CustomerId, required = true)]
    pub customer_id: Option<String>,
}

impl From<OrganizationMember> for OrganizationCustomer {
    fn from(member: OrganizationMember) -> Self {
        Self {
            id: member.customer_id,
            org_role: member.role,
        }
    }
}

/// Create an organization with its primary customer.
#[utoipa::path(post, path = "/v1/organizations", tag = "organizations",
    request_body = CreateOrganizationRequest,
    responses((status = 201, body = OrganizationEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The customer is in an organization already")),
    security(("secret_key" = [])))]
pub async fn create_organization(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<CreateOrganizationRequest>,
) -> Result<(StatusCode, Json<OrganizationEnvelope>), ApiError> {
    let organization = app
        .create_organization(&metadata, body.name, body.primary_customer_id.as_deref())
        .await?;
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
    params(("id" = formats::OrganizationId, Path, description = "Organization ID")),
    responses((status = 200, body = OrganizationMembersEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The customer is in an organization already")),
    security(("secret_key" = [])))]
pub async fn add_member(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AddMemberRequest>,
) -> Result<Json<OrganizationMembersEnvelope>, ApiError> {
    let (organization, members) = app
        .add_organization_member(&metadata, &id, body.customer_id.as_deref())
        .await?;
    let organization = OrganizationBody::from_aggregate(&organization)
        .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(OrganizationMembersEnvelope {
        organization,
        customers: members
            .into_iter()
            .map(OrganizationCustomer::from)
            .collect(),
    }))
}

/// Get the organization and all customers (primary + seat members) of a customer's
/// organization. Takes a secret key or a portal session token of that customer.
#[utoipa::path(get, path = "/v1/customers/{id}/organization-customers", tag = "portal",
    params(("id" = formats::CustomerId, Path, description = "Customer ID")),
    responses((status = 200, body = OrganizationCustomersEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such customer, or it is in no organization")),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn organization_customers(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<OrganizationCustomersEnvelope>, ApiError> {
    let (organization, members) = app.organization_of_customer(&principal, &id).await?;
    Ok(Json(OrganizationCustomersEnvelope {
        organization: OrganizationSummary {
            id: organization.id.to_string(),
            name: organization.name,
        },
        customers: members
            .into_iter()
            .map(OrganizationCustomer::from)
            .collect(),
    }))
}
