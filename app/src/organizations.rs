//! Organizations: a primary customer, billed for the organization, and the customers holding
//! seats under it. A customer belongs to at most one organization: that rule spans
//! organizations, so the log refuses it at append time (the `organization_members` key).

use domain::id::{CustomerId, OrganizationId};
use domain::organization::{Organization, OrganizationCommand};
use domain::tenant::Tenant;
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::organization_list::{OrganizationListProjection, OrganizationView};

use crate::context::App;
use crate::customers::NOT_FOUND as CUSTOMER_NOT_FOUND;
use crate::error::AppError;
use crate::ids::{parse_id, required_id};
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::command_error;

pub const NOT_FOUND: &str = "Organization not found";

/// One customer of an organization and its role (`primary` or `member`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationMember {
    pub customer_id: String,
    pub role: String,
}

impl App {
    /// The customer a body names, which must be a live customer of the tenant.
    async fn live_customer(
        &self,
        tenant: &Tenant,
        id: Option<&str>,
        field: &str,
    ) -> Result<CustomerId, AppError> {
        let id: CustomerId = required_id(id, field)?;
        CustomerListProjection::get(&self.pool, tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        Ok(id)
    }

    /// The organization's customers that are still live, primary first, then in the order
    /// they joined. A deleted customer keeps its membership in the log but is gone from every
    /// answer.
    async fn live_members(
        &self,
        tenant: &Tenant,
        members: Vec<(String, String)>,
    ) -> Result<Vec<OrganizationMember>, AppError> {
        let ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
        let live = CustomerListProjection::live_ids(&self.pool, tenant, &ids).await?;
        Ok(members
            .into_iter()
            .filter(|(id, _)| live.contains(id))
            .map(|(customer_id, role)| OrganizationMember { customer_id, role })
            .collect())
    }

    /// Creates an organization with its primary customer.
    pub async fn create_organization(
        &self,
        metadata: &CommandMetadata,
        name: Option<String>,
        primary_customer_id: Option<&str>,
    ) -> Result<Organization, AppError> {
        let tenant = metadata.tenant().clone();
        let primary_customer_id = self
            .live_customer(&tenant, primary_customer_id, "primaryCustomerId")
            .await?;
        let id: OrganizationId = metadata.new_id("organization");
        let command = OrganizationCommand::CreateOrganization {
            id: id.clone(),
            tenant,
            name,
            primary_customer_id,
        };
        self.organizations
            .execute_new(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<Organization>)
    }

    /// Adds a customer to an organization as a seat member; answers the organization and its
    /// live customers.
    pub async fn add_organization_member(
        &self,
        metadata: &CommandMetadata,
        id: &str,
        customer_id: Option<&str>,
    ) -> Result<(Organization, Vec<OrganizationMember>), AppError> {
        let tenant = metadata.tenant().clone();
        let id: OrganizationId = parse_id(id)?;
        // The organization named in the path answers first: a missing one is the 404 to give,
        // whatever the body says.
        let existing = self
            .organizations
            .current(id.as_str())
            .await
            .map_err(command_error::<Organization>)?;
        if !existing.exists() || existing.tenant.as_ref() != Some(&tenant) {
            return Err(AppError::not_found(NOT_FOUND));
        }
        let customer_id = self
            .live_customer(&tenant, customer_id, "customerId")
            .await?;
        let command = OrganizationCommand::AddOrganizationMember {
            tenant: tenant.clone(),
            customer_id,
        };
        let organization = self
            .organizations
            .execute(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<Organization>)?;
        let members = organization
            .members()
            .into_iter()
            .map(|(id, role)| (id.to_string(), role.as_str().to_owned()))
            .collect();
        let members = self.live_members(&tenant, members).await?;
        Ok((organization, members))
    }

    /// The organization of customer `id` and all its live customers. A portal session reaches
    /// its own customer's only.
    pub async fn organization_of_customer(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(OrganizationView, Vec<OrganizationMember>), AppError> {
        let id: CustomerId = parse_id(id)?;
        if !principal.reaches_customer(id.as_str()) {
            return Err(AppError::not_found(CUSTOMER_NOT_FOUND));
        }
        let tenant = &principal.tenant;
        CustomerListProjection::get(&self.pool, tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        let membership = OrganizationListProjection::membership(&self.pool, tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(NOT_FOUND))?;
        let organization =
            OrganizationListProjection::get(&self.pool, tenant, &membership.organization_id)
                .await?
                .ok_or_else(|| AppError::not_found(NOT_FOUND))?;
        let members = OrganizationListProjection::members(&self.pool, &organization.id)
            .await?
            .into_iter()
            .map(|member| (member.customer_id.to_string(), member.role))
            .collect();
        let members = self.live_members(tenant, members).await?;
        Ok((organization, members))
    }
}
