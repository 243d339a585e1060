//! The `customer_claims` guard: each live customer's email and external id, claimed in the
//! append transaction so that uniqueness holds under concurrency (see migration 0004).

use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use domain::customer::{Customer, CustomerEvent, DetailField};
use sqlx::PgConnection;

use crate::event_log::{ClaimConflict, ClaimKind, TENANT_METADATA};
use crate::inline::{InlineProjection, InlineProjectionError};

pub struct CustomerClaimsProjection;

impl ClaimKind {
    fn column_value(self) -> &'static str {
        match self {
            ClaimKind::Email => "email",
            ClaimKind::ExternalId => "external_id",
        }
    }
}

/// Decodes a Customer event from the log, or `None` for another aggregate's event.
pub(crate) fn customer_event(
    event: &SerializedEvent,
) -> Result<Option<CustomerEvent>, serde_json::Error> {
    use cqrs_es::Aggregate;
    if event.aggregate_type != Customer::TYPE {
        return Ok(None);
    }
    serde_json::from_value(event.payload.clone()).map(Some)
}

pub(crate) fn event_tenant(event: &SerializedEvent) -> Result<&str, InlineProjectionError> {
    event
        .metadata
        .get(TENANT_METADATA)
        .and_then(|t| t.as_str())
        .ok_or_else(|| {
            InlineProjectionError::Decode(serde::de::Error::custom("event metadata has no tenant"))
        })
}

/// Claims `value` for the customer, replacing its previous claim of that kind. An exclusive
/// claim fails when any other live customer of the tenant holds the value, shared or not; a
/// shared claim never fails.
async fn claim(
    connection: &mut PgConnection,
    customer_id: &str,
    tenant: &str,
    kind: ClaimKind,
    value: &str,
    shared: bool,
) -> Result<(), InlineProjectionError> {
    let claimed = sqlx::query_scalar::<_, i32>(
        "INSERT INTO customer_claims (customer_id, kind, tenant, value, shared) \
         SELECT $1, $2, $3, $4, $5 \
         WHERE $5 OR NOT EXISTS (SELECT 1 FROM customer_claims \
             WHERE tenant = $3 AND kind = $2 AND value = $4 AND customer_id <> $1) \
         ON CONFLICT (customer_id, kind) DO UPDATE SET value = EXCLUDED.value, shared = EXCLUDED.shared \
         RETURNING 1",
    )
    .bind(customer_id)
    .bind(kind.column_value())
    .bind(tenant)
    .bind(value)
    .bind(shared)
    .fetch_optional(&mut *connection)
    .await;
    match claimed {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ClaimConflict { kind }.into()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            Err(ClaimConflict { kind }.into())
        }
        Err(e) => Err(e.into()),
    }
}

async fn release(
    connection: &mut PgConnection,
    customer_id: &str,
    kind: Option<ClaimKind>,
) -> Result<(), InlineProjectionError> {
    sqlx::query(
        "DELETE FROM customer_claims WHERE customer_id = $1 AND ($2::text IS NULL OR kind = $2)",
    )
    .bind(customer_id)
    .bind(kind.map(ClaimKind::column_value))
    .execute(connection)
    .await?;
    Ok(())
}

#[async_trait]
impl InlineProjection for CustomerClaimsProjection {
    fn name(&self) -> &'static str {
        "customer_claims"
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
        match customer_event {
            CustomerEvent::CustomerCreated {
                tenant,
                email,
                details,
                ..
            } => {
                let tenant = tenant.key();
                claim(
                    connection,
                    id,
                    &tenant,
                    ClaimKind::Email,
                    &email.normalized(),
                    false,
                )
                .await?;
                if let Some(external_id) = &details.external_customer_id {
                    claim(
                        connection,
                        id,
                        &tenant,
                        ClaimKind::ExternalId,
                        external_id,
                        false,
                    )
                    .await?;
                }
            }
            CustomerEvent::EmailChanged { email, shared, .. } => {
                let tenant = event_tenant(event)?;
                claim(
                    connection,
                    id,
                    tenant,
                    ClaimKind::Email,
                    &email.normalized(),
                    shared,
                )
                .await?;
            }
            CustomerEvent::CustomerDetailsUpdated { changes, .. } => {
                match changes.get(&DetailField::ExternalCustomerId) {
                    Some(Some(external_id)) => {
                        let tenant = event_tenant(event)?;
                        claim(
                            connection,
                            id,
                            tenant,
                            ClaimKind::ExternalId,
                            external_id,
                            false,
                        )
                        .await?;
                    }
                    Some(None) => release(connection, id, Some(ClaimKind::ExternalId)).await?,
                    None => {}
                }
            }
            CustomerEvent::SoftDeleted { .. } => release(connection, id, None).await?,
        }
        Ok(())
    }
}
