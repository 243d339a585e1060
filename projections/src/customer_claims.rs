//! The `customer_claims` guard: each live customer's email and external id, claimed in the
//! append statement so that uniqueness holds under concurrency (see migration 0004).
//!
//! Only exclusive claims are unique. A value held only through shared claims (set with
//! dangerouslyAllowSameEmailForDifferentCustomers) is refused to others by the rules' own
//! uniqueness check before the append; a shared claim racing an exclusive one may let both
//! through, which is what the dangerous flag allows.

use std::collections::BTreeMap;

use cqrs_es::persist::SerializedEvent;
use domain::customer::{Customer, CustomerEvent, DetailField};

use crate::event_log::{ClaimConflict, ClaimKind, TENANT_METADATA};
use crate::inline::{AppendStatement, InlineProjection, InlineProjectionError};

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

/// The tenant an event was appended for, from its metadata.
pub(crate) fn event_tenant(event: &SerializedEvent) -> Result<&str, InlineProjectionError> {
    event
        .metadata
        .get(TENANT_METADATA)
        .and_then(|t| t.as_str())
        .ok_or_else(|| {
            InlineProjectionError::Decode(serde::de::Error::custom("event metadata has no tenant"))
        })
}

/// A customer's claim of one kind as the append leaves it: held (value, shared) or released.
type ClaimState = Option<(String, bool)>;

fn claim_kind_for(constraint: &str) -> Option<ClaimKind> {
    match constraint {
        "customer_claims_email_exclusive" => Some(ClaimKind::Email),
        "customer_claims_external_id_exclusive" => Some(ClaimKind::ExternalId),
        _ => None,
    }
}

/// Holds `value` for the customer, replacing its previous claim of that kind. An exclusive
/// claim breaks a partial unique index when another live customer of the tenant holds the
/// value exclusively; the append then fails and the command is refused.
fn hold(
    append: &mut AppendStatement,
    customer_id: &str,
    tenant: &str,
    kind: ClaimKind,
    value: String,
    shared: bool,
) {
    let (customer_id, tenant) = (customer_id.to_owned(), tenant.to_owned());
    append.write(|query| {
        query
            .push("INSERT INTO customer_claims (customer_id, kind, tenant, value, shared) VALUES (")
            .push_bind(customer_id)
            .push(", ")
            .push_bind(kind.column_value())
            .push(", ")
            .push_bind(tenant)
            .push(", ")
            .push_bind(value)
            .push(", ")
            .push_bind(shared)
            .push(
                ") ON CONFLICT (customer_id, kind) \
                 DO UPDATE SET value = EXCLUDED.value, shared = EXCLUDED.shared",
            );
    });
}

fn release(append: &mut AppendStatement, customer_id: &str, kind: ClaimKind) {
    let customer_id = customer_id.to_owned();
    append.write(|query| {
        query
            .push("DELETE FROM customer_claims WHERE customer_id = ")
            .push_bind(customer_id)
            .push(" AND kind = ")
            .push_bind(kind.column_value());
    });
}

impl InlineProjection for CustomerClaimsProjection {
    fn name(&self) -> &'static str {
        "customer_claims"
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut tenant = None;
        let mut claims: BTreeMap<ClaimKind, ClaimState> = BTreeMap::new();
        for event in events {
            let Some(customer_event) = customer_event(event)? else {
                continue;
            };
            if tenant.is_none() {
                tenant = Some(event_tenant(event)?.to_owned());
            }
            match customer_event {
                CustomerEvent::CustomerCreated { email, details, .. } => {
                    claims.insert(ClaimKind::Email, Some((email.normalized(), false)));
                    if let Some(external_id) = details.external_customer_id {
                        claims.insert(ClaimKind::ExternalId, Some((external_id, false)));
                    }
                }
                CustomerEvent::EmailChanged { email, shared, .. } => {
                    claims.insert(ClaimKind::Email, Some((email.normalized(), shared)));
                }
                CustomerEvent::CustomerDetailsUpdated { changes, .. } => {
                    if let Some(external_id) = changes.get(&DetailField::ExternalCustomerId) {
                        let state = external_id.clone().map(|id| (id, false));
                        claims.insert(ClaimKind::ExternalId, state);
                    }
                }
                CustomerEvent::SoftDeleted { .. } => {
                    claims.insert(ClaimKind::Email, None);
                    claims.insert(ClaimKind::ExternalId, None);
                }
            }
        }
        let (Some(tenant), Some(first)) = (tenant, events.first()) else {
            return Ok(());
        };
        for (kind, state) in claims {
            match state {
                Some((value, shared)) => {
                    hold(append, &first.aggregate_id, &tenant, kind, value, shared)
                }
                None => release(append, &first.aggregate_id, kind),
            }
        }
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        claim_kind_for(constraint).map(|kind| ClaimConflict { kind })
    }
}
