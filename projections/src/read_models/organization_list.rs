//! The `organization_list` and `organization_members` read models, projected inline. A
//! customer is a member of at most one organization: the members table's key refuses a second.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::id::{CustomerId, OrganizationId};
use domain::organization::{OrgRole, Organization, OrganizationEvent};
use domain::tenant::Tenant;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, tenant_of, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

pub const TABLE: &str = "organization_list";
pub const MEMBERS: &str = "organization_members";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrganizationView {
    #[sqlx(try_from = "String")]
    pub id: OrganizationId,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub primary_customer_id: CustomerId,
}

/// A customer's place in an organization.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipView {
    #[sqlx(try_from = "String")]
    pub organization_id: OrganizationId,
    #[sqlx(try_from = "String")]
    pub customer_id: CustomerId,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct OrganizationListProjection;

impl OrganizationListProjection {
    pub async fn get(
        pool: &PgPool,
        tenant: &Tenant,
        id: &OrganizationId,
    ) -> Result<Option<OrganizationView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT id, name, primary_customer_id FROM {TABLE} WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.key())
        .bind(id.as_str())
        .fetch_optional(pool)
        .await
    }

    /// The organization `customer_id` belongs to, with its role there.
    pub async fn membership(
        pool: &PgPool,
        tenant: &Tenant,
        customer_id: &str,
    ) -> Result<Option<MembershipView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT organization_id, customer_id, role, joined_at FROM {MEMBERS} \
             WHERE tenant = $1 AND customer_id = $2"
        ))
        .bind(tenant.key())
        .bind(customer_id)
        .fetch_optional(pool)
        .await
    }

    /// Memberships of many customers at once, for lists.
    pub async fn memberships(
        pool: &PgPool,
        tenant: &Tenant,
        customer_ids: &[String],
    ) -> Result<Vec<MembershipView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT organization_id, customer_id, role, joined_at FROM {MEMBERS} \
             WHERE tenant = $1 AND customer_id = ANY($2)"
        ))
        .bind(tenant.key())
        .bind(customer_ids)
        .fetch_all(pool)
        .await
    }

    /// The organization's members, primary first, then in the order they joined.
    pub async fn members(
        pool: &PgPool,
        organization_id: &OrganizationId,
    ) -> Result<Vec<MembershipView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT organization_id, customer_id, role, joined_at FROM {MEMBERS} \
             WHERE organization_id = $1 ORDER BY role <> 'primary', joined_at, customer_id"
        ))
        .bind(organization_id.as_str())
        .fetch_all(pool)
        .await
    }
}

fn member_row(
    tenant: String,
    organization_id: &str,
    customer_id: &str,
    role: OrgRole,
    at: DateTime<Utc>,
) -> RowWrite {
    let mut row = RowWrite {
        created: true,
        ..RowWrite::default()
    };
    row.set("customer_id", Cell::text(customer_id));
    row.set("tenant", Cell::text(tenant));
    row.set("organization_id", Cell::text(organization_id));
    row.set("role", Cell::text(role.as_str()));
    row.set("joined_at", Cell::Time(Some(at)));
    row
}

impl InlineProjection for OrganizationListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "organization_list_pkey"
    }

    fn name(&self) -> &'static str {
        TABLE
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        for event in events {
            let Some(decoded) = decode::<Organization>(event)? else {
                continue;
            };
            let organization_id = event.aggregate_id.as_str();
            match decoded {
                OrganizationEvent::OrganizationCreated {
                    id,
                    tenant,
                    name,
                    primary_customer_id,
                    at,
                } => {
                    let mut row = RowWrite {
                        created: true,
                        ..RowWrite::default()
                    };
                    row.set("id", Cell::text(id.as_str()));
                    row.set("tenant", Cell::text(tenant.key()));
                    row.set("name", Cell::text(name));
                    row.set(
                        "primary_customer_id",
                        Cell::text(primary_customer_id.as_str()),
                    );
                    row.set("created_at", Cell::Time(Some(at)));
                    row.push(append, TABLE, id.to_string());
                    member_row(
                        tenant.key(),
                        organization_id,
                        primary_customer_id.as_str(),
                        OrgRole::Primary,
                        at,
                    )
                    .push(append, MEMBERS, primary_customer_id.to_string());
                }
                OrganizationEvent::OrganizationMemberAdded { customer_id, at } => {
                    member_row(
                        tenant_of(event).unwrap_or_default(),
                        organization_id,
                        customer_id.as_str(),
                        OrgRole::Member,
                        at,
                    )
                    .push(append, MEMBERS, customer_id.to_string());
                }
            }
        }
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        (constraint == "organization_members_pkey").then_some(ClaimConflict {
            kind: ClaimKind::OrganizationMember,
        })
    }
}
