//! The `customer_list` read model: one row per customer, fed from the log inside the append
//! transaction, serving the Customers API's get and list.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::customer::{CustomerEvent, DetailField};
use domain::tenant::Tenant;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::customer_claims::customer_event;
use crate::inline::{InlineProjection, InlineProjectionError};

/// One customer as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerListView {
    pub id: String,
    pub merchant_id: String,
    pub email: String,
    pub name: Option<String>,
    pub external_customer_id: Option<String>,
    pub billing_address_line1: Option<String>,
    pub billing_address_line2: Option<String>,
    pub billing_city: Option<String>,
    pub billing_postal_code: Option<String>,
    pub billing_country: Option<String>,
    pub tax_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, merchant_id, email, name, external_customer_id, \
    billing_address_line1, billing_address_line2, billing_city, billing_postal_code, \
    billing_country, tax_id, created_at, updated_at, deleted_at";

fn column(field: DetailField) -> &'static str {
    match field {
        DetailField::Name => "name",
        DetailField::ExternalCustomerId => "external_customer_id",
        DetailField::BillingAddressLine1 => "billing_address_line1",
        DetailField::BillingAddressLine2 => "billing_address_line2",
        DetailField::BillingCity => "billing_city",
        DetailField::BillingPostalCode => "billing_postal_code",
        DetailField::BillingCountry => "billing_country",
        DetailField::TaxId => "tax_id",
    }
}

/// Which live customers a list asks for, and which page.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Compared case-insensitively, like uniqueness.
    pub email: Option<String>,
    pub external_customer_id: Option<String>,
    /// Keyset cursor: only customers whose id sorts after this one.
    pub starting_after: Option<String>,
    /// `None` returns every match, as the seed's list does.
    pub limit: Option<i64>,
}

/// A page of customers and whether more follow it.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    pub customers: Vec<CustomerListView>,
    pub has_more: bool,
}

pub struct CustomerListProjection;

impl CustomerListProjection {
    /// The live customer `id` of `tenant`, or `None`: deleted customers and other tenants'
    /// customers are not found alike.
    pub async fn get(
        pool: &PgPool,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<CustomerListView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM customer_list \
             WHERE id = $1 AND tenant = $2 AND deleted_at IS NULL"
        ))
        .bind(id)
        .bind(tenant.key())
        .fetch_optional(pool)
        .await
    }

    /// Live customers of `tenant` in id order (which is creation order).
    pub async fn list(
        pool: &PgPool,
        tenant: &Tenant,
        filter: &CustomerFilter,
    ) -> Result<CustomerPage, sqlx::Error> {
        let mut query: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM customer_list WHERE deleted_at IS NULL AND tenant = "
        ));
        query.push_bind(tenant.key());
        if let Some(email) = &filter.email {
            query
                .push(" AND lower(email) = ")
                .push_bind(email.to_lowercase());
        }
        if let Some(external_id) = &filter.external_customer_id {
            query
                .push(" AND external_customer_id = ")
                .push_bind(external_id.clone());
        }
        if let Some(after) = &filter.starting_after {
            query.push(" AND id > ").push_bind(after.clone());
        }
        query.push(" ORDER BY id");
        if let Some(limit) = filter.limit {
            // One extra row tells whether another page follows.
            query.push(" LIMIT ").push_bind(limit + 1);
        }
        let mut customers: Vec<CustomerListView> = query.build_query_as().fetch_all(pool).await?;
        let has_more = filter
            .limit
            .is_some_and(|limit| customers.len() as i64 > limit);
        if let Some(limit) = filter.limit {
            customers.truncate(limit as usize);
        }
        Ok(CustomerPage {
            customers,
            has_more,
        })
    }
}

#[async_trait]
impl InlineProjection for CustomerListProjection {
    fn name(&self) -> &'static str {
        "customer_list"
    }

    async fn apply(
        &self,
        connection: &mut PgConnection,
        event: &SerializedEvent,
    ) -> Result<(), InlineProjectionError> {
        let Some(customer_event) = customer_event(event)? else {
            return Ok(());
        };
        let id = event.aggregate_id.as_str();
        let version = event.sequence as i64;
        match customer_event {
            CustomerEvent::CustomerCreated {
                tenant,
                email,
                details,
                at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO customer_list (id, tenant, merchant_id, email, name, \
                     external_customer_id, billing_address_line1, billing_address_line2, \
                     billing_city, billing_postal_code, billing_country, tax_id, created_at, \
                     updated_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
                )
                .bind(id)
                .bind(tenant.key())
                .bind(&tenant.merchant_id)
                .bind(email.as_str())
                .bind(&details.name)
                .bind(&details.external_customer_id)
                .bind(&details.billing_address_line1)
                .bind(&details.billing_address_line2)
                .bind(&details.billing_city)
                .bind(&details.billing_postal_code)
                .bind(&details.billing_country)
                .bind(&details.tax_id)
                .bind(at)
                .bind(version)
                .execute(connection)
                .await?;
            }
            CustomerEvent::EmailChanged { email, at, .. } => {
                sqlx::query(
                    "UPDATE customer_list SET email = $2, updated_at = $3, version = $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(email.as_str())
                .bind(at)
                .bind(version)
                .execute(connection)
                .await?;
            }
            CustomerEvent::CustomerDetailsUpdated { changes, at } => {
                let mut query: QueryBuilder<Postgres> =
                    QueryBuilder::new("UPDATE customer_list SET updated_at = ");
                query.push_bind(at).push(", version = ").push_bind(version);
                for (field, value) in changes {
                    query
                        .push(format!(", {} = ", column(field)))
                        .push_bind(value);
                }
                query.push(" WHERE id = ").push_bind(id);
                query.build().execute(connection).await?;
            }
            CustomerEvent::SoftDeleted { at } => {
                sqlx::query(
                    "UPDATE customer_list SET deleted_at = $2, updated_at = $2, version = $3 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(at)
                .bind(version)
                .execute(connection)
                .await?;
            }
        }
        Ok(())
    }
}
