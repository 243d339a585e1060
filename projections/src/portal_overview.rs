//! The `portal_overview` read model: one JSON document per live customer holding everything
//! the portal's overview shows, so the endpoint answers with one indexed read. It is a
//! catch-up projection: fed after the append, in commit order, from its checkpoint.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::customer::CustomerEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::catch_up::{CatchUpError, CatchUpProjection};
use crate::event_feed::StoredEvent;

/// The live table and the projection's name.
pub const TABLE: &str = "portal_overview";

/// The overview as the portal endpoint answers it (`{"portal": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalOverview {
    pub customer: PortalCustomer,
    pub subscription: Option<Value>,
    pub payment_methods: Vec<Value>,
    pub invoices: Vec<Value>,
    pub payments: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalCustomer {
    pub id: String,
    pub name: Option<String>,
    pub email: String,
}

/// One customer's row: its document and the keys it is found by.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    tenant: String,
    external_customer_id: Option<String>,
    overview: PortalOverview,
}

/// What a batch does to one customer's row.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Write(Box<Row>),
    Delete,
}

/// Projects into `table` under checkpoint `name`: the live pair, or the fresh pair a rebuild
/// fills before it takes the live one's place.
#[derive(Debug, Clone, Copy)]
pub struct PortalOverviewProjection {
    name: &'static str,
    table: &'static str,
}

impl Default for PortalOverviewProjection {
    fn default() -> Self {
        Self {
            name: TABLE,
            table: TABLE,
        }
    }
}

impl PortalOverviewProjection {
    pub fn into(name: &'static str, table: &'static str) -> Self {
        Self { name, table }
    }

    /// The overview of live customer `customer_id`.
    pub async fn by_customer(
        pool: &PgPool,
        customer_id: &str,
    ) -> Result<Option<PortalOverview>, sqlx::Error> {
        let document: Option<sqlx::types::Json<PortalOverview>> =
            sqlx::query_scalar("SELECT document FROM portal_overview WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_optional(pool)
                .await?;
        Ok(document.map(|d| d.0))
    }

    async fn load(
        &self,
        ids: &[String],
        tx: &mut PgConnection,
    ) -> Result<BTreeMap<String, Row>, sqlx::Error> {
        let rows: Vec<(
            String,
            String,
            Option<String>,
            sqlx::types::Json<PortalOverview>,
        )> = sqlx::query_as(&format!(
            "SELECT customer_id, tenant, external_customer_id, document FROM {} \
                 WHERE customer_id = ANY($1)",
            self.table
        ))
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant, external_customer_id, document)| {
                (
                    id,
                    Row {
                        tenant,
                        external_customer_id,
                        overview: document.0,
                    },
                )
            })
            .collect())
    }

    async fn store(
        &self,
        changes: BTreeMap<String, Change>,
        tx: &mut PgConnection,
    ) -> Result<(), sqlx::Error> {
        let mut deleted = Vec::new();
        let (mut ids, mut tenants, mut external_ids, mut documents) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, change) in changes {
            match change {
                Change::Delete => deleted.push(id),
                Change::Write(row) => {
                    ids.push(id);
                    tenants.push(row.tenant);
                    external_ids.push(row.external_customer_id);
                    documents.push(sqlx::types::Json(row.overview));
                }
            }
        }
        if !deleted.is_empty() {
            sqlx::query(&format!(
                "DELETE FROM {} WHERE customer_id = ANY($1)",
                self.table
            ))
            .bind(&deleted)
            .execute(&mut *tx)
            .await?;
        }
        if !ids.is_empty() {
            sqlx::query(&format!(
                "INSERT INTO {} (customer_id, tenant, external_customer_id, document) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[]) \
                 ON CONFLICT (customer_id) DO UPDATE SET \
                     tenant = excluded.tenant, \
                     external_customer_id = excluded.external_customer_id, \
                     document = excluded.document",
                self.table
            ))
            .bind(&ids)
            .bind(&tenants)
            .bind(&external_ids)
            .bind(&documents)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

/// Folds one customer event into the batch's view of that customer's row.
fn fold_customer(current: Option<Change>, event: CustomerEvent) -> Option<Change> {
    match (current, event) {
        (
            _,
            CustomerEvent::CustomerCreated {
                id,
                tenant,
                email,
                details,
                ..
            },
        ) => Some(Change::Write(Box::new(Row {
            tenant: tenant.key(),
            external_customer_id: details.external_customer_id.clone(),
            overview: PortalOverview {
                customer: PortalCustomer {
                    id: id.to_string(),
                    name: details.name.clone(),
                    email: email.to_string(),
                },
                subscription: None,
                payment_methods: Vec::new(),
                invoices: Vec::new(),
                payments: Vec::new(),
            },
        }))),
        (Some(Change::Write(mut row)), CustomerEvent::EmailChanged { email, .. }) => {
            row.overview.customer.email = email.to_string();
            Some(Change::Write(row))
        }
        (Some(Change::Write(mut row)), CustomerEvent::CustomerDetailsUpdated { changes, .. }) => {
            use domain::customer::DetailField;
            if let Some(name) = changes.get(&DetailField::Name) {
                row.overview.customer.name = name.clone();
            }
            if let Some(external_id) = changes.get(&DetailField::ExternalCustomerId) {
                row.external_customer_id = external_id.clone();
            }
            Some(Change::Write(row))
        }
        (_, CustomerEvent::SoftDeleted { .. }) => Some(Change::Delete),
        // A change to a row this table does not hold (a deleted customer's): nothing to show.
        (other, _) => other,
    }
}

#[async_trait]
impl CatchUpProjection for PortalOverviewProjection {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn apply(
        &self,
        events: &[StoredEvent],
        tx: &mut PgConnection,
    ) -> Result<(), CatchUpError> {
        use cqrs_es::Aggregate;
        let customer_events: Vec<(&StoredEvent, CustomerEvent)> = events
            .iter()
            .filter(|e| e.aggregate_type == domain::customer::Customer::TYPE)
            .map(|e| {
                serde_json::from_value(e.payload.clone())
                    .map(|decoded| (e, decoded))
                    .map_err(|source| CatchUpError::Decode {
                        position: e.position,
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        if customer_events.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = customer_events
            .iter()
            .map(|(e, _)| e.aggregate_id.clone())
            .collect();
        let mut changes: BTreeMap<String, Change> = self
            .load(&ids, tx)
            .await?
            .into_iter()
            .map(|(id, row)| (id, Change::Write(Box::new(row))))
            .collect();
        for (stored, event) in customer_events {
            let current = changes.remove(&stored.aggregate_id);
            if let Some(next) = fold_customer(current, event) {
                changes.insert(stored.aggregate_id.clone(), next);
            }
        }
        self.store(changes, tx).await?;
        Ok(())
    }
}
