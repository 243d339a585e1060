//! The `customer_list` read model: one row per customer, fed from the log inside the append
//! statement, serving the Customers API's get and list. Its unique indexes are also the
//! guard of email and external-id uniqueness (migration 0004): an append that breaks one
//! fails whole, and the command is refused.
//!
//! Only exclusive emails are unique. An email held through shared ones (set with
//! dangerouslyAllowSameEmailForDifferentCustomers) is refused to an exclusive claim by the
//! `customer_list_email_free` guard (migration 0007) that the same statement calls; a shared
//! email racing an exclusive one may let both through, which is what the dangerous flag allows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::customer::{Customer, CustomerEvent, DetailField};
use domain::id::CustomerId;
use domain::tenant::Tenant;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, Condition, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

/// One customer as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerListView {
    #[sqlx(try_from = "String")]
    pub id: CustomerId,
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

/// Projects customers into `table`: `customer_list` itself, or a fresh table a rebuild fills
/// before it takes the live one's place.
#[derive(Debug, Clone, Copy)]
pub struct CustomerListProjection {
    table: &'static str,
}

impl Default for CustomerListProjection {
    fn default() -> Self {
        Self::into_table(TABLE)
    }
}

/// The live read model's table.
pub const TABLE: &str = "customer_list";

impl CustomerListProjection {
    pub const fn into_table(table: &'static str) -> Self {
        Self { table }
    }

    /// The live read model, as appends write it.
    pub const fn live() -> Self {
        Self::into_table(TABLE)
    }

    /// The live customer `id` of `tenant`, or `None`: deleted customers and other tenants'
    /// customers are not found alike.
    pub async fn get<'e>(
        executor: impl sqlx::PgExecutor<'e>,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<CustomerListView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM customer_list \
             WHERE id = $1 AND tenant = $2 AND deleted_at IS NULL"
        ))
        .bind(id)
        .bind(tenant.key())
        .fetch_optional(executor)
        .await
    }

    /// [`get`](Self::get) for each of `ids`, in one query: the live ones found.
    pub async fn get_many<'e>(
        executor: impl sqlx::PgExecutor<'e>,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<CustomerListView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM customer_list \
             WHERE id = ANY($1) AND tenant = $2 AND deleted_at IS NULL"
        ))
        .bind(ids)
        .bind(tenant.key())
        .fetch_all(executor)
        .await
    }

    /// Which of `ids` are live customers of `tenant`, in one query (for lists of members).
    pub async fn live_ids(
        pool: &PgPool,
        tenant: &Tenant,
        ids: &[String],
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT id FROM customer_list \
             WHERE id = ANY($1) AND tenant = $2 AND deleted_at IS NULL",
        )
        .bind(ids)
        .bind(tenant.key())
        .fetch_all(pool)
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
        // Each half of the email filter matches one of the partial email indexes.
        if let Some(email) = &filter.email {
            query
                .push(
                    " AND id IN (SELECT id FROM customer_list WHERE deleted_at IS NULL \
                     AND NOT email_shared AND tenant = ",
                )
                .push_bind(tenant.key())
                .push(" AND email_key = ")
                .push_bind(email.to_lowercase())
                .push(
                    " UNION ALL SELECT id FROM customer_list WHERE deleted_at IS NULL \
                     AND email_shared AND tenant = ",
                )
                .push_bind(tenant.key())
                .push(" AND email_key = ")
                .push_bind(email.to_lowercase())
                .push(")");
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

/// What a customer's events do to its row: every column when it is created among them,
/// otherwise only the columns they change. Later events override earlier ones.
#[derive(Default)]
pub(crate) struct RowChanges {
    row: RowWrite,
}

impl RowChanges {
    pub(crate) fn apply(&mut self, sequence: usize, event: CustomerEvent) {
        let cells = &mut self.row.cells;
        match event {
            CustomerEvent::CustomerCreated {
                id,
                tenant,
                email,
                details,
                at,
            } => {
                self.row.created = true;
                cells.insert("id", Cell::Text(Some(id.to_string())));
                cells.insert("tenant", Cell::Text(Some(tenant.key())));
                cells.insert("merchant_id", Cell::Text(Some(tenant.merchant_id)));
                cells.insert("email", Cell::Text(Some(email.to_string())));
                cells.insert("email_key", Cell::Text(Some(email.normalized())));
                cells.insert("email_shared", Cell::Bool(false));
                for field in DetailField::ALL {
                    let value = details.get(field).map(str::to_owned);
                    cells.insert(column(field), Cell::Text(value));
                }
                cells.insert("created_at", Cell::Time(Some(at)));
                cells.insert("updated_at", Cell::Time(Some(at)));
                cells.insert("deleted_at", Cell::Time(None));
            }
            CustomerEvent::EmailChanged { email, shared, at } => {
                cells.insert("email", Cell::Text(Some(email.to_string())));
                cells.insert("email_key", Cell::Text(Some(email.normalized())));
                cells.insert("email_shared", Cell::Bool(shared));
                cells.insert("updated_at", Cell::Time(Some(at)));
            }
            CustomerEvent::CustomerDetailsUpdated { changes, at } => {
                for (field, value) in changes {
                    cells.insert(column(field), Cell::Text(value));
                }
                cells.insert("updated_at", Cell::Time(Some(at)));
            }
            CustomerEvent::SoftDeleted { at, .. } => {
                cells.insert("deleted_at", Cell::Time(Some(at)));
                cells.insert("updated_at", Cell::Time(Some(at)));
            }
        }
        cells.insert("version", Cell::Int(sequence as i64));
    }

    pub(crate) fn created(&self) -> bool {
        self.row.created
    }
}

impl CustomerListProjection {
    /// Inserts whole rows (customers created within their changes) in one statement.
    pub(crate) async fn insert_created(
        &self,
        rows: Vec<RowChanges>,
        connection: &mut sqlx::PgConnection,
    ) -> Result<(), sqlx::Error> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let columns: Vec<&str> = first.row.cells.keys().copied().collect();
        let mut query: QueryBuilder<'static, Postgres> = QueryBuilder::new(format!(
            "INSERT INTO {} ({}) ",
            self.table,
            columns.join(", ")
        ));
        query.push_values(rows, |mut values, row| {
            for cell in row.row.cells.into_values() {
                cell.bind_value(&mut values);
            }
        });
        query.build().execute(connection).await?;
        Ok(())
    }
}

/// An email a write takes exclusively, which no live customer may hold shared.
struct EmailClaim {
    /// Known when the row is created; an update reads it from the row itself.
    tenant: Option<String>,
    email_key: String,
}

impl CustomerListProjection {
    /// The exclusive email claim among `cells`, if the live table is written: a rebuild
    /// replays events the log already accepted and must not judge them again.
    fn exclusive_email_claim(&self, cells: &BTreeMap<&'static str, Cell>) -> Option<EmailClaim> {
        if self.table != TABLE {
            return None;
        }
        match (cells.get("email_key"), cells.get("email_shared")) {
            (Some(Cell::Text(Some(email_key))), Some(Cell::Bool(false))) => Some(EmailClaim {
                tenant: match cells.get("tenant") {
                    Some(Cell::Text(tenant)) => tenant.clone(),
                    _ => None,
                },
                email_key: email_key.clone(),
            }),
            _ => None,
        }
    }
}

impl InlineProjection for CustomerListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint.strip_suffix("_pkey") == Some(self.table)
    }

    fn name(&self) -> &'static str {
        "customer_list"
    }

    /// Folds the append's events into one row write: the whole row when the customer is
    /// created in it, otherwise an UPDATE of the columns the events changed.
    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut changes = RowChanges::default();
        for event in events {
            if let Some(customer_event) = decode::<Customer>(event)? {
                changes.apply(event.sequence, customer_event);
            }
        }
        let Some(first) = events.first() else {
            return Ok(());
        };
        let id = first.aggregate_id.clone();
        let created = changes.row.created;
        let condition = self.exclusive_email_claim(&changes.row.cells).map(
            |EmailClaim { tenant, email_key }| -> Condition {
                let claimant = id.clone();
                Box::new(move |query| {
                    query.push("customer_list_email_free(");
                    // A new row's tenant is a value; an updated row has its own.
                    if created {
                        query.push_bind(tenant);
                    } else {
                        query.push("tenant");
                    }
                    query.push(", ").push_bind(email_key);
                    query.push(", ").push_bind(claimant);
                    query.push(")");
                })
            },
        );
        changes.row.push_where(append, self.table, id, condition);
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        let kind = match constraint {
            "customer_list_email_exclusive" | "customer_list_email_shared" => ClaimKind::Email,
            "customer_list_external_id" => ClaimKind::ExternalId,
            _ => return None,
        };
        Some(ClaimConflict { kind })
    }
}
