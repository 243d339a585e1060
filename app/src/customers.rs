//! Customers: create, update, read (now or as they were), list, and delete — the one flow here
//! that spans aggregates: a delete refuses (or, with `cascade`, first cancels) the customer's
//! live subscription, while no subscription of the customer can start.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use domain::customer::{Customer, CustomerCommand, CustomerError, DetailField};
use domain::id::{CustomerId, SubscriptionId};
use domain::subscription::Subscription;
use futures::Stream;
use projections::event_store::feed;
use projections::read_models::customer_list::{
    CustomerFilter, CustomerListProjection, CustomerListView,
};
use projections::read_models::organization_list::{MembershipView, OrganizationListProjection};
use projections::read_models::payment_totals::{PaymentTotalsProjection, PaymentTotalsView};
use projections::read_models::subscription_list::SubscriptionListProjection;
use projections::ClaimKind;

use crate::context::App;
use crate::customer_lock::CustomerLock;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::ids::parse_id;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::{command_error, is_claim, Refusals};

pub const NOT_FOUND: &str = "Customer not found or access denied";
pub const HAS_ACTIVE_SUBSCRIPTION: &str =
    "Customer has an active subscription. Cancel it first or delete with ?cascade=true";

/// The eight detail fields of a customer, each a `T`, in [`DetailField::ALL`] order: the one
/// place requests name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFields<T> {
    pub name: T,
    pub external_customer_id: T,
    pub billing_address_line1: T,
    pub billing_address_line2: T,
    pub billing_city: T,
    pub billing_postal_code: T,
    pub billing_country: T,
    pub tax_id: T,
}

impl<T> CustomerFields<T> {
    /// Each field with its value.
    pub fn into_pairs(self) -> impl Iterator<Item = (DetailField, T)> {
        DetailField::ALL.into_iter().zip([
            self.name,
            self.external_customer_id,
            self.billing_address_line1,
            self.billing_address_line2,
            self.billing_city,
            self.billing_postal_code,
            self.billing_country,
            self.tax_id,
        ])
    }
}

/// What creating a customer takes.
#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    pub email: Option<String>,
    pub fields: CustomerFields<Option<String>>,
}

/// What updating a customer takes: only fields present change; `Some(None)` clears one.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    /// `Some(None)` asks to clear the email, which the rules refuse.
    pub email: Option<Option<String>>,
    pub fields: CustomerFields<Option<Option<String>>>,
    pub allow_shared_email: bool,
}

/// Which customers a list asks for.
#[derive(Debug, Clone, Default)]
pub struct CustomerQuery {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
    pub email: Option<String>,
    pub external_customer_id: Option<String>,
    pub include_payment_data: bool,
}

/// A listed customer, with its organization and payment totals (a row per currency, the most
/// recently paid first) when payment data was asked for.
#[derive(Debug, Clone)]
pub struct ListedCustomer {
    pub customer: CustomerListView,
    pub membership: Option<MembershipView>,
    pub payments: Vec<PaymentTotalsView>,
}

/// When a customer is read as it was.
#[derive(Debug, Clone, Copy)]
enum AsOf {
    Now,
    Instant(DateTime<Utc>),
    Version(u64),
}

/// The customer as a command left it, in the read model's shape; `None` for a customer that
/// was never created.
pub fn customer_view(customer: Customer) -> Option<CustomerListView> {
    let details = customer.details;
    Some(CustomerListView {
        id: customer.id?,
        merchant_id: customer.tenant?.merchant_id,
        email: customer.email?.to_string(),
        name: details.name,
        external_customer_id: details.external_customer_id,
        billing_address_line1: details.billing_address_line1,
        billing_address_line2: details.billing_address_line2,
        billing_city: details.billing_city,
        billing_postal_code: details.billing_postal_code,
        billing_country: details.billing_country,
        tax_id: details.tax_id,
        created_at: customer.created_at?,
        updated_at: customer.updated_at?,
        deleted_at: customer.deleted_at,
    })
}

/// Customers per page of a streamed list.
const STREAM_PAGE: i64 = 1000;

/// Refuses a list query the read model cannot answer as asked.
fn check_query(query: &CustomerQuery) -> Result<(), AppError> {
    if let Some(limit) = query.limit {
        if !(1..=1000).contains(&limit) {
            return Err(AppError::invalid("limit must be between 1 and 1000"));
        }
    }
    if let Some(after) = &query.starting_after {
        parse_id::<CustomerId>(after)?;
    }
    for (name, value) in [
        ("email", &query.email),
        ("externalCustomerId", &query.external_customer_id),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
        {
            return Err(AppError::invalid(format!(
                "{name} must not contain control characters"
            )));
        }
    }
    Ok(())
}

/// The operation a command error happened in: the seed words some errors per operation.
#[derive(Clone, Copy)]
enum Operation {
    Create,
    Update,
    Delete,
}

/// A customer command's error; the seed words an email claim and our failures per operation.
fn customer_error(error: AggregateError<CustomerError>, operation: Operation) -> AppError {
    if matches!(operation, Operation::Create) && is_claim(&error, ClaimKind::Email) {
        return Customer::refusal(CustomerError::EmailTaken);
    }
    match command_error::<Customer>(error) {
        AppError::Internal(_) => AppError::Internal(
            match operation {
                Operation::Create => "Failed to create customer",
                Operation::Update => "Failed to update customer",
                Operation::Delete => "Failed to delete customer",
            }
            .to_owned(),
        ),
        other => other,
    }
}

impl App {
    pub async fn create_customer(
        &self,
        metadata: &CommandMetadata,
        new: NewCustomer,
    ) -> Result<CustomerListView, AppError> {
        let id: CustomerId = metadata.new_id("customer");
        let command = CustomerCommand::CreateCustomer {
            id: id.clone(),
            tenant: metadata.tenant().clone(),
            email: new.email,
            details: new.fields.into_pairs().collect(),
        };
        let customer = self
            .customers
            .execute_new(id.as_str(), command, metadata)
            .await
            .map_err(|e| customer_error(e, Operation::Create))?;
        customer_view(customer).ok_or_else(|| {
            AppError::internal("Failed to create customer", "no customer after create")
        })
    }

    pub async fn update_customer(
        &self,
        metadata: &CommandMetadata,
        id: &str,
        changes: CustomerChanges,
    ) -> Result<CustomerListView, AppError> {
        let id: CustomerId = parse_id(id)?;
        let details: BTreeMap<DetailField, Option<String>> = changes
            .fields
            .into_pairs()
            .filter_map(|(field, value)| value.map(|v| (field, v)))
            .collect();
        let command = CustomerCommand::UpdateCustomer {
            tenant: metadata.tenant().clone(),
            // An explicit null email is a request to clear it, which the rules refuse.
            email: changes.email.map(Option::unwrap_or_default),
            details,
            allow_shared_email: changes.allow_shared_email,
        };
        let customer = self
            .customers
            .execute(id.as_str(), command, metadata)
            .await
            .map_err(|e| customer_error(e, Operation::Update))?;
        customer_view(customer).ok_or_else(|| AppError::not_found(NOT_FOUND))
    }

    /// The tenant's live customer `id`, now, or as it was at an instant (the events' own time)
    /// or after its first `version` events (a customer deleted since is shown as it was then,
    /// its `deletedAt` unset).
    pub async fn customer(
        &self,
        principal: &Principal,
        id: &str,
        at: Option<DateTime<Utc>>,
        version: Option<u64>,
    ) -> Result<CustomerListView, AppError> {
        let id: CustomerId = parse_id(id)?;
        let as_of = match (at, version) {
            (None, None) => AsOf::Now,
            (Some(instant), None) => AsOf::Instant(instant),
            (None, Some(version)) => AsOf::Version(version),
            (Some(_), Some(_)) => return Err(AppError::invalid("Give asOf or version, not both")),
        };
        let customer = match as_of {
            AsOf::Now => {
                let mut connection = self.statements.acquire().await?;
                let found =
                    CustomerListProjection::get(&mut *connection, &principal.tenant, id.as_str())
                        .await;
                connection.give_back(&found);
                found?
            }
            as_of => {
                let history = self
                    .customers
                    .history(id.as_str())
                    .await
                    .map_err(|e| AppError::internal("Failed to read customer history", e))?;
                let mut customer = Customer::default();
                for envelope in history {
                    let too_late = match as_of {
                        AsOf::Instant(instant) => envelope.payload.at() > instant,
                        AsOf::Version(version) => envelope.sequence as u64 > version,
                        AsOf::Now => false,
                    };
                    if too_late {
                        break;
                    }
                    customer.apply(envelope.payload);
                }
                Some(customer)
                    .filter(|c| c.tenant.as_ref() == Some(&principal.tenant))
                    .and_then(customer_view)
            }
        };
        customer.ok_or_else(|| AppError::not_found(NOT_FOUND))
    }

    /// The tenant's live customers, a page at a time; with payment data, each customer's
    /// organization too (one query for the whole page).
    pub async fn list_customers(
        &self,
        principal: &Principal,
        query: CustomerQuery,
    ) -> Result<(Vec<ListedCustomer>, bool), AppError> {
        check_query(&query)?;
        let filter = CustomerFilter {
            email: query.email,
            external_customer_id: query.external_customer_id,
            starting_after: query.starting_after,
            limit: query.limit,
        };
        let page = CustomerListProjection::list(&self.pool, &principal.tenant, &filter).await?;
        let customers = self
            .with_memberships(principal, page.customers, query.include_payment_data)
            .await?;
        Ok((customers, page.has_more))
    }

    /// Every live customer of the tenant the query names (its `limit` is ignored), as a
    /// stream of pages read one after another by id (keyset), so that a list of any length
    /// holds one page in memory. Each page is read as of its own query: a customer created or
    /// deleted while the list is read may or may not be in it, and no customer that exists
    /// throughout is missed or repeated.
    pub fn stream_customers(
        &self,
        principal: &Principal,
        query: CustomerQuery,
    ) -> Result<impl Stream<Item = Result<Vec<ListedCustomer>, AppError>> + Send + 'static, AppError>
    {
        check_query(&query)?;
        let app = self.clone();
        let principal = principal.clone();
        let first = CustomerFilter {
            email: query.email,
            external_customer_id: query.external_customer_id,
            starting_after: query.starting_after,
            limit: Some(STREAM_PAGE),
        };
        let with_payment_data = query.include_payment_data;
        Ok(futures::stream::try_unfold(Some(first), move |filter| {
            let app = app.clone();
            let principal = principal.clone();
            async move {
                let Some(mut filter) = filter else {
                    return Ok(None);
                };
                let page =
                    CustomerListProjection::list(&app.pool, &principal.tenant, &filter).await?;
                let next = page.has_more.then(|| {
                    filter.starting_after = page.customers.last().map(|c| c.id.to_string());
                    filter
                });
                let customers = app
                    .with_memberships(&principal, page.customers, with_payment_data)
                    .await?;
                Ok(Some((customers, next)))
            }
        }))
    }

    /// The page's customers, each with its organization membership when asked for.
    async fn with_memberships(
        &self,
        principal: &Principal,
        customers: Vec<CustomerListView>,
        with_payment_data: bool,
    ) -> Result<Vec<ListedCustomer>, AppError> {
        if !with_payment_data {
            return Ok(customers
                .into_iter()
                .map(|customer| ListedCustomer {
                    customer,
                    membership: None,
                    payments: Vec::new(),
                })
                .collect());
        }
        let ids: Vec<String> = customers.iter().map(|c| c.id.to_string()).collect();
        let mut memberships: HashMap<String, MembershipView> =
            OrganizationListProjection::memberships(&self.pool, &principal.tenant, &ids)
                .await?
                .into_iter()
                .map(|membership| (membership.customer_id.to_string(), membership))
                .collect();
        let mut payments: HashMap<String, Vec<PaymentTotalsView>> = HashMap::new();
        for totals in
            PaymentTotalsProjection::for_customers(&self.pool, &principal.tenant, &ids).await?
        {
            payments
                .entry(totals.customer_id.clone())
                .or_default()
                .push(totals);
        }
        Ok(customers
            .into_iter()
            .map(|customer| ListedCustomer {
                membership: memberships.remove(customer.id.as_str()),
                payments: payments.remove(customer.id.as_str()).unwrap_or_default(),
                customer,
            })
            .collect())
    }

    /// Soft-deletes a customer: it disappears from every query, its history stays. A customer
    /// with a live subscription is refused unless `cascade`, which cancels it first. No
    /// subscription of this customer can start meanwhile, so the check holds until the delete
    /// is written.
    ///
    /// A cascade is a recorded flow (`flows.rs`): if the process dies after the cancel and
    /// before the unlink or the delete, another instance (or this one restarted) finishes it.
    pub async fn delete_customer(
        &self,
        metadata: &CommandMetadata,
        id: &str,
        cascade: bool,
    ) -> Result<(), AppError> {
        let id: CustomerId = parse_id(id)?;
        let input = FlowInput::DeleteCustomer {
            customer_id: id.clone(),
        };
        let delete = |app: App, metadata: CommandMetadata| async move {
            let lock =
                CustomerLock::take(&app.lock_connections, metadata.tenant(), id.as_str()).await?;
            let deleted = app.delete_while_locked(&metadata, &id, cascade).await;
            lock.end().await;
            deleted
        };
        if cascade {
            self.in_flow(metadata, input, delete).await
        } else {
            delete(self.clone(), metadata.clone()).await
        }
    }

    async fn delete_while_locked(
        &self,
        metadata: &CommandMetadata,
        id: &CustomerId,
        cascade: bool,
    ) -> Result<(), AppError> {
        let canceled_subscriptions = if cascade {
            let mut canceled = self.cancel_live_subscriptions(metadata, id).await?;
            // A resumed cascade also names those its earlier run canceled.
            if let Some(flow) = metadata.flow.as_ref().filter(|flow| flow.resuming) {
                for earlier in
                    feed::aggregates_written_by_flow(&self.pool, &flow.id, Subscription::TYPE)
                        .await?
                {
                    let earlier = parse_id::<SubscriptionId>(&earlier)?;
                    if !canceled.contains(&earlier) {
                        canceled.insert(0, earlier);
                    }
                }
            }
            canceled
        } else {
            let live =
                SubscriptionListProjection::live_for_customer(&self.pool, metadata.tenant(), id)
                    .await?;
            if live.is_some() {
                return Err(AppError::conflict(HAS_ACTIVE_SUBSCRIPTION));
            }
            Vec::new()
        };
        let command = CustomerCommand::DeleteCustomer {
            tenant: metadata.tenant().clone(),
            canceled_subscriptions,
        };
        self.customers
            .execute(id.as_str(), command, metadata)
            .await
            .map_err(|e| customer_error(e, Operation::Delete))?;
        Ok(())
    }

    /// Cancels every subscription of the customer that is not canceled (and unlinks their
    /// payment methods), returning those this call canceled. A customer has at most one such
    /// subscription; asking again after each cancel also catches one that started meanwhile.
    async fn cancel_live_subscriptions(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
    ) -> Result<Vec<SubscriptionId>, AppError> {
        let mut canceled = Vec::new();
        let mut seen = Vec::new();
        let mut refused = None;
        while let Some(live) = SubscriptionListProjection::live_for_customer(
            &self.pool,
            metadata.tenant(),
            customer_id,
        )
        .await?
        {
            let id = live.id;
            // The read model commits with the cancel, so a subscription still live after its
            // cancel was refused (concurrent writes that outlasted the retries): stop, not loop.
            if seen.contains(&id) {
                return Err(refused.unwrap_or_else(|| {
                    AppError::internal("Failed to delete customer", "live after its cancel")
                }));
            }
            seen.push(id.clone());
            match self.cancel_subscription_by_id(metadata, &id).await {
                Ok(_) => canceled.push(id),
                // Most likely canceled by another request meanwhile: not ours to record, and
                // the next look tells whether it is gone.
                Err(e @ AppError::Conflict { .. }) => refused = Some(e),
                Err(e) => return Err(e),
            }
        }
        Ok(canceled)
    }
}
