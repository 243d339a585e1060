//! The `portal_overview` read model: one JSON document per live customer holding everything
//! the portal's overview shows (customer, subscription, payment methods; invoices and payments
//! once they exist), so the endpoint answers with one indexed read. It is a catch-up
//! projection: fed after the append, in commit order, from its checkpoint.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::customer::{Customer, CustomerEvent, DetailField};
use domain::payment_method::{PaymentMethod, PaymentMethodEvent};
use domain::subscription::{Subscription, SubscriptionEvent, SubscriptionStatus};
use domain::tenant::Tenant;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::catch_up::{self, CatchUpError, LogConsumer};
use crate::event_store::feed::StoredEvent;

/// The live table and the projection's name.
pub const TABLE: &str = "portal_overview";
/// The aggregate types whose events the overview shows; a reader waits for these only.
const READ_TYPES: &[&str] = &[Customer::TYPE, Subscription::TYPE, PaymentMethod::TYPE];

/// The overview as the portal endpoint answers it (`{"portal": …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalOverview {
    pub customer: PortalCustomer,
    /// The customer's latest subscription, canceled or not.
    pub subscription: Option<PortalSubscription>,
    /// Payment methods not removed, oldest first.
    pub payment_methods: Vec<PortalPaymentMethod>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalSubscription {
    pub id: String,
    /// The seed's name for the id that stays the same across plan changes; a subscription
    /// here keeps its id for life, so the two are equal.
    pub stable_subscription_id: String,
    pub status: SubscriptionStatus,
    pub plan_id: String,
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub payment_method_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortalPaymentMethod {
    pub id: String,
    pub provider: String,
    pub payment_type: String,
    pub status: String,
    pub card_brand: Option<String>,
    pub card_last_four: Option<String>,
    pub card_expiry_month: Option<u32>,
    pub card_expiry_year: Option<i32>,
    pub linked_to_subscription: bool,
}

/// One customer's row: its document, the keys it is found by, and the ids of the aggregates
/// (subscriptions, payment methods) its document shows.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    tenant: String,
    external_customer_id: Option<String>,
    aggregate_ids: Vec<String>,
    overview: PortalOverview,
}

/// What a batch does to one customer's row.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Write(Box<Row>),
    Delete,
}

/// An event this projection reads, decoded.
enum Fact {
    Customer(CustomerEvent),
    Subscription(SubscriptionEvent),
    PaymentMethod(PaymentMethodEvent),
}

impl Fact {
    /// The customer the event names, when it names one.
    fn named_customer(&self, aggregate_id: &str) -> Option<String> {
        match self {
            Fact::Customer(_) => Some(aggregate_id.to_owned()),
            Fact::Subscription(SubscriptionEvent::SubscriptionStarted { customer_id, .. })
            | Fact::PaymentMethod(PaymentMethodEvent::PaymentMethodAdded { customer_id, .. }) => {
                Some(customer_id.to_string())
            }
            _ => None,
        }
    }
}

fn decode<T: DeserializeOwned>(event: &StoredEvent) -> Result<T, CatchUpError> {
    Deserialize::deserialize(&event.payload).map_err(|source| CatchUpError::Decode {
        position: event.position,
        source,
    })
}

fn fact(event: &StoredEvent) -> Result<Option<Fact>, CatchUpError> {
    Ok(match event.aggregate_type.as_str() {
        Customer::TYPE => Some(Fact::Customer(decode(event)?)),
        Subscription::TYPE => Some(Fact::Subscription(decode(event)?)),
        PaymentMethod::TYPE => Some(Fact::PaymentMethod(decode(event)?)),
        _ => None,
    })
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

/// How a portal read names its customer.
pub enum PortalLookup<'a> {
    Id(&'a str),
    ExternalId(&'a str),
}

/// An overview as read, and whether the projection was behind the tenant's log then, and
/// held back (behind on events that cannot be applied yet: see [`catch_up`]).
pub struct FreshRead {
    pub overview: Option<PortalOverview>,
    pub behind: bool,
    pub held_back: bool,
}

type StoredRow = (
    String,
    String,
    Option<String>,
    Vec<String>,
    sqlx::types::Json<PortalOverview>,
);

impl PortalOverviewProjection {
    pub fn into(name: &'static str, table: &'static str) -> Self {
        Self { name, table }
    }

    /// The overview as it is with every committed event of the tenant applied, for when the
    /// live projection is behind and the caller cannot wait for it (a long transaction
    /// elsewhere on the server holds its runner back). The tenant's pending events are applied
    /// by the projection's own code, in a transaction that is then rolled back: nothing is
    /// written, and the answer is what the runner will write.
    pub async fn read_with_pending(
        pool: &PgPool,
        tenant: &Tenant,
        customer: &PortalLookup<'_>,
    ) -> Result<Option<PortalOverview>, CatchUpError> {
        let live = Self::default();
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT set_config('enable_seqscan', 'off', true)")
            .execute(&mut *tx)
            .await?;
        let pending = catch_up::pending_for_tenant(&mut tx, live.name, &tenant.key()).await?;
        live.apply(&pending, &mut tx).await?;
        let (column, value) = match customer {
            PortalLookup::Id(id) => ("customer_id", *id),
            PortalLookup::ExternalId(id) => ("external_customer_id", *id),
        };
        let document: Option<sqlx::types::Json<PortalOverview>> = sqlx::query_scalar(&format!(
            "SELECT document FROM {TABLE} WHERE tenant = $1 AND {column} = $2"
        ))
        .bind(tenant.key())
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(document.map(|d| d.0))
    }

    /// In one round trip: the overview of the tenant's live customer that `customer` names,
    /// and whether events of the tenant have committed that the projection has not applied
    /// yet (then the caller waits and asks again, to see its own writes).
    pub async fn read(
        pool: &PgPool,
        tenant: &Tenant,
        customer: &PortalLookup<'_>,
    ) -> Result<FreshRead, sqlx::Error> {
        let (column, value) = match customer {
            PortalLookup::Id(id) => ("customer_id", *id),
            PortalLookup::ExternalId(id) => ("external_customer_id", *id),
        };
        let (document, behind, held_back): (Option<sqlx::types::Json<PortalOverview>>, bool, bool) =
            sqlx::query_as(&format!(
                "SELECT (SELECT document FROM portal_overview \
                         WHERE tenant = $1 AND {column} = $2), {behind}, {held_back}",
                behind = catch_up::behind_sql("$3", "$1", Some("$4")),
                held_back = catch_up::held_back_sql("$3", "$1", Some("$4")),
            ))
            .bind(tenant.key())
            .bind(value)
            .bind(TABLE)
            .bind(READ_TYPES.to_vec())
            .fetch_one(pool)
            .await?;
        Ok(FreshRead {
            overview: document.map(|d| d.0),
            behind,
            held_back,
        })
    }

    /// The rows of `customers`, and of the customers whose documents show `aggregates`.
    async fn load(
        &self,
        customers: &[String],
        aggregates: &[String],
        tx: &mut PgConnection,
    ) -> Result<BTreeMap<String, Row>, sqlx::Error> {
        let rows: Vec<StoredRow> = sqlx::query_as(&format!(
            "SELECT customer_id, tenant, external_customer_id, aggregate_ids, document FROM {} \
             WHERE customer_id = ANY($1) OR aggregate_ids && $2",
            self.table
        ))
        .bind(customers)
        .bind(aggregates)
        .fetch_all(&mut *tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, tenant, external_customer_id, aggregate_ids, document)| {
                    (
                        id,
                        Row {
                            tenant,
                            external_customer_id,
                            aggregate_ids,
                            overview: document.0,
                        },
                    )
                },
            )
            .collect())
    }

    async fn store(
        &self,
        changes: BTreeMap<String, Change>,
        tx: &mut PgConnection,
    ) -> Result<(), sqlx::Error> {
        let mut deleted = Vec::new();
        let mut ids = Vec::new();
        let mut tenants = Vec::new();
        let mut external_ids = Vec::new();
        // Arrays of arrays must be rectangular in PostgreSQL: aggregate ids travel as JSON.
        let mut aggregate_ids = Vec::new();
        let mut documents = Vec::new();
        for (id, change) in changes {
            match change {
                Change::Delete => deleted.push(id),
                Change::Write(row) => {
                    ids.push(id);
                    tenants.push(row.tenant);
                    external_ids.push(row.external_customer_id);
                    aggregate_ids.push(sqlx::types::Json(row.aggregate_ids));
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
                "INSERT INTO {} (customer_id, tenant, external_customer_id, aggregate_ids, document) \
                 SELECT id, tenant, external_id, \
                        ARRAY(SELECT jsonb_array_elements_text(aggregates)), document \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[]) \
                     AS batch(id, tenant, external_id, aggregates, document) \
                 ON CONFLICT (customer_id) DO UPDATE SET \
                     tenant = excluded.tenant, \
                     external_customer_id = excluded.external_customer_id, \
                     aggregate_ids = excluded.aggregate_ids, \
                     document = excluded.document",
                self.table
            ))
            .bind(&ids)
            .bind(&tenants)
            .bind(&external_ids)
            .bind(&aggregate_ids)
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
            aggregate_ids: Vec::new(),
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

/// Folds a subscription event into its customer's document.
fn fold_subscription(row: &mut Row, aggregate_id: &str, event: SubscriptionEvent) {
    let overview = &mut row.overview;
    if let SubscriptionEvent::SubscriptionStarted {
        id,
        plan,
        payment_method_id,
        ..
    } = &event
    {
        overview.subscription = Some(PortalSubscription {
            id: id.to_string(),
            stable_subscription_id: id.to_string(),
            status: SubscriptionStatus::Active,
            plan_id: plan.plan_id.to_string(),
            grace_period_ends_at: None,
            payment_method_id: payment_method_id.as_ref().map(ToString::to_string),
        });
        if !row.aggregate_ids.iter().any(|known| known == aggregate_id) {
            row.aggregate_ids.push(aggregate_id.to_owned());
        }
        return;
    }
    // Later events change the subscription shown only if it is still the latest one.
    let Some(subscription) = overview
        .subscription
        .as_mut()
        .filter(|s| s.id == aggregate_id)
    else {
        return;
    };
    match event {
        SubscriptionEvent::SubscriptionStarted { .. }
        | SubscriptionEvent::SubscriptionRenewed { .. }
        | SubscriptionEvent::SubscriptionCancelScheduled { .. } => {}
        SubscriptionEvent::SubscriptionPaymentMethodChanged { to, .. } => {
            subscription.payment_method_id = Some(to.to_string());
        }
        SubscriptionEvent::SubscriptionPastDue {
            grace_period_ends_at,
            ..
        } => {
            subscription.status = SubscriptionStatus::PastDue;
            subscription.grace_period_ends_at = Some(grace_period_ends_at);
        }
        SubscriptionEvent::SubscriptionReactivated { .. } => {
            subscription.status = SubscriptionStatus::Active;
            subscription.grace_period_ends_at = None;
        }
        SubscriptionEvent::SubscriptionCanceled { .. } => {
            subscription.status = SubscriptionStatus::Canceled;
            subscription.grace_period_ends_at = None;
        }
    }
}

/// Folds a payment-method event into its customer's document.
fn fold_payment_method(row: &mut Row, aggregate_id: &str, event: PaymentMethodEvent) {
    let methods = &mut row.overview.payment_methods;
    match event {
        PaymentMethodEvent::PaymentMethodAdded {
            id,
            provider,
            payment_type,
            card,
            ..
        } => {
            methods.push(PortalPaymentMethod {
                id: id.to_string(),
                provider: provider.as_str().to_owned(),
                payment_type,
                status: "active".to_owned(),
                card_brand: card.as_ref().map(|c| c.brand.clone()),
                card_last_four: card.as_ref().map(|c| c.last_four.clone()),
                card_expiry_month: card.as_ref().map(|c| c.exp_month),
                card_expiry_year: card.as_ref().map(|c| c.exp_year),
                linked_to_subscription: false,
            });
            row.aggregate_ids.push(aggregate_id.to_owned());
        }
        PaymentMethodEvent::PaymentMethodLinked { .. } => {
            if let Some(method) = methods.iter_mut().find(|m| m.id == aggregate_id) {
                method.linked_to_subscription = true;
            }
        }
        PaymentMethodEvent::PaymentMethodUnlinked { .. } => {
            if let Some(method) = methods.iter_mut().find(|m| m.id == aggregate_id) {
                method.linked_to_subscription = false;
            }
        }
        PaymentMethodEvent::PaymentMethodRemoved { .. } => {
            methods.retain(|m| m.id != aggregate_id);
            row.aggregate_ids.retain(|known| known != aggregate_id);
        }
    }
}

#[async_trait]
impl LogConsumer for PortalOverviewProjection {
    fn name(&self) -> &'static str {
        self.name
    }

    /// What [`fact`] reads.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(READ_TYPES)
    }

    async fn apply(
        &self,
        events: &[StoredEvent],
        tx: &mut PgConnection,
    ) -> Result<(), CatchUpError> {
        let mut facts = Vec::new();
        for event in events {
            if let Some(fact) = fact(event)? {
                facts.push((event.aggregate_id.as_str(), fact));
            }
        }
        if facts.is_empty() {
            return Ok(());
        }
        let named: Vec<String> = facts
            .iter()
            .filter_map(|(id, fact)| fact.named_customer(id))
            .collect();
        let unnamed: Vec<String> = facts
            .iter()
            .filter(|(id, fact)| fact.named_customer(id).is_none())
            .map(|(id, _)| (*id).to_owned())
            .collect();
        let loaded = self.load(&named, &unnamed, tx).await?;
        // Which customer each subscription and payment method belongs to.
        let mut owners: HashMap<String, String> = loaded
            .iter()
            .flat_map(|(customer, row)| {
                row.aggregate_ids
                    .iter()
                    .map(move |id| (id.clone(), customer.clone()))
            })
            .collect();
        let mut changes: BTreeMap<String, Change> = loaded
            .into_iter()
            .map(|(id, row)| (id, Change::Write(Box::new(row))))
            .collect();
        for (aggregate_id, fact) in facts {
            let customer = match fact.named_customer(aggregate_id) {
                Some(customer) => {
                    owners.insert(aggregate_id.to_owned(), customer.clone());
                    customer
                }
                None => match owners.get(aggregate_id) {
                    Some(customer) => customer.clone(),
                    // Its customer's document is gone (deleted): nothing to show.
                    None => continue,
                },
            };
            match fact {
                Fact::Customer(event) => {
                    let current = changes.remove(&customer);
                    if let Some(next) = fold_customer(current, event) {
                        changes.insert(customer, next);
                    }
                }
                Fact::Subscription(event) => {
                    if let Some(Change::Write(row)) = changes.get_mut(&customer) {
                        fold_subscription(row, aggregate_id, event);
                    }
                }
                Fact::PaymentMethod(event) => {
                    if let Some(Change::Write(row)) = changes.get_mut(&customer) {
                        fold_payment_method(row, aggregate_id, event);
                    }
                }
            }
        }
        self.store(changes, tx).await?;
        Ok(())
    }
}
