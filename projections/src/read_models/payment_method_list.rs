//! The `payment_method_list` read model: every payment method with its card and the
//! subscription it is linked to, projected inline. Its unique index adds a provider's payment
//! method once, however often the provider tells us about it.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::{PaymentMethod, PaymentMethodEvent};
use domain::tenant::Tenant;
use sqlx::PgPool;

use crate::event_store::append::{
    decode, AppendStatement, InlineProjection, InlineProjectionError,
};
use crate::event_store::row_write::{Cell, RowWrite};
use crate::event_store::{ClaimConflict, ClaimKind};

pub const TABLE: &str = "payment_method_list";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentMethodView {
    #[sqlx(try_from = "String")]
    pub id: PaymentMethodId,
    #[sqlx(try_from = "String")]
    pub customer_id: CustomerId,
    pub provider: String,
    pub payment_type: String,
    pub card_brand: Option<String>,
    pub card_last_four: Option<String>,
    pub card_exp_month: Option<i64>,
    pub card_exp_year: Option<i64>,
    pub provider_reference: Option<String>,
    pub linked_subscription_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, customer_id, provider, payment_type, card_brand, card_last_four, \
    card_exp_month, card_exp_year, provider_reference, linked_subscription_id, created_at";

#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentMethodListProjection;

impl PaymentMethodListProjection {
    /// The customer's payment methods that are not removed, oldest first.
    pub async fn for_customer(
        pool: &PgPool,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<Vec<PaymentMethodView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} \
             WHERE tenant = $1 AND customer_id = $2 AND removed_at IS NULL ORDER BY id"
        ))
        .bind(tenant.key())
        .bind(customer_id.as_str())
        .fetch_all(pool)
        .await
    }

    /// The live payment method a provider knows as `reference`, if it was added already.
    pub async fn by_provider_reference(
        pool: &PgPool,
        tenant: &Tenant,
        provider: &str,
        reference: &str,
    ) -> Result<Option<PaymentMethodView>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM {TABLE} WHERE tenant = $1 AND provider = $2 \
             AND provider_reference = $3 AND removed_at IS NULL"
        ))
        .bind(tenant.key())
        .bind(provider)
        .bind(reference)
        .fetch_optional(pool)
        .await
    }
}

impl InlineProjection for PaymentMethodListProjection {
    fn is_aggregate_key(&self, constraint: &str) -> bool {
        constraint == "payment_method_list_pkey"
    }

    fn name(&self) -> &'static str {
        TABLE
    }

    fn writes(
        &self,
        events: &[SerializedEvent],
        append: &mut AppendStatement,
    ) -> Result<(), InlineProjectionError> {
        let mut row = RowWrite::default();
        for event in events {
            let Some(decoded) = decode::<PaymentMethod>(event)? else {
                continue;
            };
            match decoded {
                PaymentMethodEvent::PaymentMethodAdded {
                    id,
                    tenant,
                    customer_id,
                    provider,
                    payment_type,
                    card,
                    provider_reference,
                    at,
                } => {
                    row.created = true;
                    row.set("id", Cell::text(id.as_str()));
                    row.set("tenant", Cell::text(tenant.key()));
                    row.set("customer_id", Cell::text(customer_id.as_str()));
                    row.set("provider", Cell::text(provider.as_str()));
                    row.set("payment_type", Cell::text(payment_type));
                    row.set(
                        "card_brand",
                        Cell::Text(card.as_ref().map(|c| c.brand.clone())),
                    );
                    row.set(
                        "card_last_four",
                        Cell::Text(card.as_ref().map(|c| c.last_four.clone())),
                    );
                    row.set(
                        "card_exp_month",
                        Cell::OptionalInt(card.as_ref().map(|c| i64::from(c.exp_month))),
                    );
                    row.set(
                        "card_exp_year",
                        Cell::OptionalInt(card.as_ref().map(|c| i64::from(c.exp_year))),
                    );
                    row.set("provider_reference", Cell::Text(provider_reference));
                    row.set("linked_subscription_id", Cell::Text(None));
                    row.set("created_at", Cell::Time(Some(at)));
                    row.set("removed_at", Cell::Time(None));
                }
                PaymentMethodEvent::PaymentMethodLinked {
                    subscription_id, ..
                } => {
                    row.set(
                        "linked_subscription_id",
                        Cell::text(subscription_id.as_str()),
                    );
                }
                PaymentMethodEvent::PaymentMethodUnlinked { .. } => {
                    row.set("linked_subscription_id", Cell::Text(None));
                }
                PaymentMethodEvent::PaymentMethodRemoved { at } => {
                    row.set("removed_at", Cell::Time(Some(at)));
                }
            }
        }
        if let Some(first) = events.first() {
            row.push(append, TABLE, first.aggregate_id.clone());
        }
        Ok(())
    }

    fn refusal(&self, constraint: &str) -> Option<ClaimConflict> {
        (constraint == "payment_method_list_provider_reference").then_some(ClaimConflict {
            kind: ClaimKind::ProviderPaymentMethod,
        })
    }
}
