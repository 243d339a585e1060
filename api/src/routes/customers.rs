//! The Customers API of the seed: list, get, create, update, soft-delete.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use domain::customer::{Customer, CustomerCommand, CustomerError, DetailField};
use domain::id::{CustomerId, SubscriptionId};
use projections::customer_list::{CustomerFilter, CustomerListProjection, CustomerListView};
use projections::organization_list::{MembershipView, OrganizationListProjection};
use projections::subscription_list::SubscriptionListProjection;
use projections::{ClaimConflict, ClaimKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Principal;
use crate::commands::CommandMetadata;
use crate::customer_turns::CustomerTurn;
use crate::error::ApiError;
use crate::extract::{present, JsonBody, QueryParams};
use crate::routes::{subscriptions, Success};
use crate::state::AppState;

pub(crate) const NOT_FOUND: &str = "Customer not found or access denied";
const HAS_ACTIVE_SUBSCRIPTION: &str =
    "Customer has an active subscription. Cancel it first or delete with ?cascade=true";

/// A customer as every endpoint shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerBody {
    #[schema(example = "cust_0192f1c2a7b47c8e9a1d2b3c4d5e6f70")]
    pub id: String,
    #[schema(example = "customer@example.com")]
    pub email: String,
    pub name: Option<String>,
    pub external_customer_id: Option<String>,
    pub billing_address_line1: Option<String>,
    pub billing_address_line2: Option<String>,
    pub billing_city: Option<String>,
    pub billing_postal_code: Option<String>,
    pub billing_country: Option<String>,
    pub tax_id: Option<String>,
    pub merchant_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<CustomerListView> for CustomerBody {
    fn from(view: CustomerListView) -> Self {
        Self {
            id: view.id,
            email: view.email,
            name: view.name,
            external_customer_id: view.external_customer_id,
            billing_address_line1: view.billing_address_line1,
            billing_address_line2: view.billing_address_line2,
            billing_city: view.billing_city,
            billing_postal_code: view.billing_postal_code,
            billing_country: view.billing_country,
            tax_id: view.tax_id,
            merchant_id: view.merchant_id,
            created_at: view.created_at,
            updated_at: view.updated_at,
            deleted_at: view.deleted_at,
        }
    }
}

impl CustomerBody {
    /// The customer as a command left it; `None` for a customer that was never created.
    fn from_aggregate(customer: Customer) -> Option<Self> {
        let details = customer.details;
        Some(Self {
            id: customer.id?.to_string(),
            email: customer.email?.to_string(),
            name: details.name,
            external_customer_id: details.external_customer_id,
            billing_address_line1: details.billing_address_line1,
            billing_address_line2: details.billing_address_line2,
            billing_city: details.billing_city,
            billing_postal_code: details.billing_postal_code,
            billing_country: details.billing_country,
            tax_id: details.tax_id,
            merchant_id: customer.tenant?.merchant_id,
            created_at: customer.created_at?,
            updated_at: customer.updated_at?,
            deleted_at: customer.deleted_at,
        })
    }
}

/// A customer with the payment aggregates `includePaymentData=true` asks for.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerWithPaymentData {
    #[serde(flatten)]
    pub customer: CustomerBody,
    pub customer_organization_id: Option<String>,
    #[schema(example = "primary")]
    pub org_role: Option<String>,
    pub total_payments_cents: i64,
    pub payment_count: i64,
    #[schema(example = "USD")]
    pub currency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerEnvelope {
    pub customer: CustomerBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ListedCustomer {
    Basic(CustomerBody),
    WithPaymentData(CustomerWithPaymentData),
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerListEnvelope {
    pub customers: Vec<ListedCustomer>,
    /// True when `limit` cut the list short; pass the last id as `startingAfter` for more.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// When true, include payment aggregates per customer.
    pub include_payment_data: Option<bool>,
    /// Page size, 1 to 1000. Without it the whole list is returned.
    pub limit: Option<i64>,
    /// Return customers after this customer id (keyset pagination).
    pub starting_after: Option<String>,
    /// Only the customer with this email (case-insensitive).
    pub email: Option<String>,
    /// Only the customer with this external id.
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Required; unique among the merchant's customers, compared case-insensitively.
    #[schema(example = "newcustomer@example.com")]
    pub email: Option<String>,
    pub name: Option<String>,
    pub external_customer_id: Option<String>,
    pub billing_address_line1: Option<String>,
    pub billing_address_line2: Option<String>,
    pub billing_city: Option<String>,
    pub billing_postal_code: Option<String>,
    /// Two-letter ISO 3166-1 code.
    pub billing_country: Option<String>,
    pub tax_id: Option<String>,
}

/// Every field is optional; only fields present change. `null` or `""` clears a field
/// (the email cannot be cleared).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub external_customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub billing_address_line1: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub billing_address_line2: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub billing_city: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub billing_postal_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub billing_country: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub tax_id: Option<Option<String>>,
    /// Allow an email another live customer already has (not recommended).
    pub dangerously_allow_same_email_for_different_customers: Option<bool>,
}

/// Pairs a request's detail values, given in `DetailField::ALL` order, with their fields.
fn detail_fields<T>(values: [T; 8]) -> impl Iterator<Item = (DetailField, T)> {
    DetailField::ALL.into_iter().zip(values)
}

impl CreateCustomerRequest {
    fn details(self) -> (Option<String>, BTreeMap<DetailField, Option<String>>) {
        let details = detail_fields([
            self.name,
            self.external_customer_id,
            self.billing_address_line1,
            self.billing_address_line2,
            self.billing_city,
            self.billing_postal_code,
            self.billing_country,
            self.tax_id,
        ]);
        (self.email, details.collect())
    }
}

impl UpdateCustomerRequest {
    fn changes(self) -> (Option<String>, BTreeMap<DetailField, Option<String>>) {
        let changes = detail_fields([
            self.name,
            self.external_customer_id,
            self.billing_address_line1,
            self.billing_address_line2,
            self.billing_city,
            self.billing_postal_code,
            self.billing_country,
            self.tax_id,
        ]);
        // An explicit null email is a request to clear it, which the rules refuse.
        let email = self.email.map(Option::unwrap_or_default);
        let changes = changes
            .filter_map(|(field, value)| value.map(|v| (field, v)))
            .collect();
        (email, changes)
    }
}

/// The operation a command error happened in: the seed words some errors per operation.
#[derive(Clone, Copy)]
enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn failure(self) -> &'static str {
        match self {
            Operation::Create => "Failed to create customer",
            Operation::Update => "Failed to update customer",
            Operation::Delete => "Failed to delete customer",
        }
    }

    fn email_taken(self) -> CustomerError {
        match self {
            Operation::Create => CustomerError::EmailTaken,
            _ => CustomerError::EmailTakenByAnother,
        }
    }
}

fn rule_error(error: CustomerError, operation: Operation) -> ApiError {
    let message = error.to_string();
    match error {
        CustomerError::EmailRequired
        | CustomerError::InvalidEmail
        | CustomerError::InvalidField { .. } => ApiError::bad_request(message),
        CustomerError::EmailTaken
        | CustomerError::EmailTakenByAnother
        | CustomerError::ExternalIdTaken
        | CustomerError::AlreadyExists => ApiError::conflict(message),
        CustomerError::NotFound | CustomerError::AlreadyDeleted => ApiError::not_found(message),
        CustomerError::Unavailable(detail) => ApiError::internal(operation.failure(), detail),
    }
}

fn command_error(error: AggregateError<CustomerError>, operation: Operation) -> ApiError {
    match error {
        AggregateError::UserError(e) => rule_error(e, operation),
        AggregateError::AggregateConflict => {
            ApiError::conflict("The customer was changed by concurrent requests; retry the request")
        }
        AggregateError::UnexpectedError(e) => match e.downcast_ref::<ClaimConflict>() {
            Some(ClaimConflict {
                kind: ClaimKind::Email,
            }) => rule_error(operation.email_taken(), operation),
            Some(ClaimConflict {
                kind: ClaimKind::ExternalId,
            }) => rule_error(CustomerError::ExternalIdTaken, operation),
            // Customer appends write no other aggregate's read models.
            Some(_) | None => ApiError::internal(operation.failure(), e),
        },
        other => ApiError::internal(operation.failure(), other),
    }
}

pub(crate) fn parse_id(id: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(id).map_err(|_| {
        ApiError::bad_request(
            "Invalid customer ID: expected \"cust_\" followed by letters, digits or underscores",
        )
    })
}

/// Get all customers for the authenticated merchant.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(ListCustomersQuery),
    responses((status = 200, body = CustomerListEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 401, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_customers(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(query): QueryParams<ListCustomersQuery>,
) -> Result<Json<CustomerListEnvelope>, ApiError> {
    if let Some(limit) = query.limit {
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::bad_request("limit must be between 1 and 1000"));
        }
    }
    if let Some(after) = &query.starting_after {
        parse_id(after)?;
    }
    for (name, value) in [
        ("email", &query.email),
        ("externalCustomerId", &query.external_customer_id),
    ] {
        if value
            .as_deref()
            .is_some_and(|v| v.chars().any(char::is_control))
        {
            return Err(ApiError::bad_request(format!(
                "{name} must not contain control characters"
            )));
        }
    }
    let filter = CustomerFilter {
        email: query.email,
        external_customer_id: query.external_customer_id,
        starting_after: query.starting_after,
        limit: query.limit,
    };
    let page = CustomerListProjection::list(&state.pool, &principal.tenant, &filter).await?;
    let with_payment_data = query.include_payment_data.unwrap_or(false);
    // One query for the whole page's organizations, not one per customer.
    let mut memberships: HashMap<String, MembershipView> = if with_payment_data {
        let ids: Vec<String> = page.customers.iter().map(|c| c.id.clone()).collect();
        OrganizationListProjection::memberships(&state.pool, &principal.tenant.key(), &ids)
            .await?
            .into_iter()
            .map(|membership| (membership.customer_id.clone(), membership))
            .collect()
    } else {
        HashMap::new()
    };
    let customers = page
        .customers
        .into_iter()
        .map(|view| {
            let membership = memberships.remove(&view.id);
            let customer = CustomerBody::from(view);
            if with_payment_data {
                // Payments arrive with a later capability; until then every customer has
                // none.
                ListedCustomer::WithPaymentData(CustomerWithPaymentData {
                    customer,
                    customer_organization_id: membership
                        .as_ref()
                        .map(|m| m.organization_id.clone()),
                    org_role: membership.map(|m| m.role),
                    total_payments_cents: 0,
                    payment_count: 0,
                    currency: None,
                })
            } else {
                ListedCustomer::Basic(customer)
            }
        })
        .collect();
    Ok(Json(CustomerListEnvelope {
        customers,
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetCustomerQuery {
    /// The customer as it was at this instant (ISO 8601), folded from its events.
    pub as_of: Option<DateTime<Utc>>,
    /// The customer as it was after its first `version` events.
    pub version: Option<u64>,
}

/// Get a specific customer by their ID; with `asOf` or `version`, as it was then (a customer
/// deleted since is shown with its `deletedAt` unset, as it was).
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer ID"), GetCustomerQuery),
    responses((status = 200, body = CustomerEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn get_customer(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<GetCustomerQuery>,
) -> Result<Json<CustomerEnvelope>, ApiError> {
    let id = parse_id(&id)?;
    let customer = match (query.as_of, query.version) {
        (None, None) => CustomerListProjection::get(&state.pool, &principal.tenant, id.as_str())
            .await?
            .map(CustomerBody::from),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("Give asOf or version, not both"));
        }
        (as_of, version) => {
            let history = state
                .customers
                .history(id.as_str())
                .await
                .map_err(|e| ApiError::internal("Failed to read customer history", e))?;
            let mut customer = Customer::default();
            for envelope in history {
                let too_late = match (as_of, version) {
                    (Some(instant), _) => envelope.payload.at() > instant,
                    (_, Some(version)) => envelope.sequence as u64 > version,
                    (None, None) => false,
                };
                if too_late {
                    break;
                }
                customer.apply(envelope.payload);
            }
            Some(customer)
                .filter(|c| c.tenant.as_ref() == Some(&principal.tenant))
                .and_then(CustomerBody::from_aggregate)
        }
    };
    let customer = customer.ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(CustomerEnvelope { customer }))
}

/// Create a new customer for the authenticated merchant.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomerRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 201, body = CustomerEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_customer(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    JsonBody(body): JsonBody<CreateCustomerRequest>,
) -> Result<(StatusCode, Json<CustomerEnvelope>), ApiError> {
    let (email, details) = body.details();
    let id = CustomerId::generate();
    let command = CustomerCommand::CreateCustomer {
        id: id.clone(),
        tenant: metadata.principal.tenant.clone(),
        email,
        details,
    };
    let customer = state
        .customers
        .execute_new(id.as_str(), command, &metadata)
        .await
        .map_err(|e| command_error(e, Operation::Create))?;
    let customer = CustomerBody::from_aggregate(customer).ok_or_else(|| {
        ApiError::internal(Operation::Create.failure(), "no customer after create")
    })?;
    Ok((StatusCode::CREATED, Json(CustomerEnvelope { customer })))
}

/// Update an existing customer's information; only provided fields change.
#[utoipa::path(post, path = "/v1/customers/{id}", tag = "customers", request_body = UpdateCustomerRequest,
    params(("id" = String, Path, description = "Customer ID"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = CustomerEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn update_customer(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateCustomerRequest>,
) -> Result<Json<CustomerEnvelope>, ApiError> {
    let id = parse_id(&id)?;
    let allow_shared_email = body
        .dangerously_allow_same_email_for_different_customers
        .unwrap_or(false);
    let (email, details) = body.changes();
    let command = CustomerCommand::UpdateCustomer {
        tenant: metadata.principal.tenant.clone(),
        email,
        details,
        allow_shared_email,
    };
    let customer = state
        .customers
        .execute(id.as_str(), command, &metadata)
        .await
        .map_err(|e| command_error(e, Operation::Update))?;
    let customer =
        CustomerBody::from_aggregate(customer).ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
    Ok(Json(CustomerEnvelope { customer }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteCustomerQuery {
    /// Cancel the customer's active subscription first, instead of refusing with a 409.
    pub cascade: Option<bool>,
}

/// Cancels every subscription of the customer that is not canceled (and unlinks their payment
/// methods), returning those this call canceled. A customer has at most one such subscription;
/// asking again after each cancel also catches one that started meanwhile.
async fn cancel_live_subscriptions(
    state: &AppState,
    metadata: &CommandMetadata,
    customer_id: &CustomerId,
) -> Result<Vec<SubscriptionId>, ApiError> {
    let tenant = metadata.principal.tenant.key();
    let mut canceled = Vec::new();
    let mut seen = Vec::new();
    let mut refused = None;
    while let Some(live) =
        SubscriptionListProjection::live_for_customer(&state.pool, &tenant, customer_id.as_str())
            .await?
    {
        let id = SubscriptionId::parse(&live.id)
            .map_err(|e| ApiError::internal(Operation::Delete.failure(), e))?;
        // The read model commits with the cancel, so a subscription still live after its
        // cancel was refused (concurrent writes that outlasted the retries): stop, not loop.
        if seen.contains(&id) {
            return Err(refused.unwrap_or_else(|| {
                ApiError::internal(Operation::Delete.failure(), "live after its cancel")
            }));
        }
        seen.push(id.clone());
        match subscriptions::cancel(state, metadata, &id).await {
            Ok(_) => canceled.push(id),
            // Most likely canceled by another request meanwhile: not ours to record, and the
            // next look tells whether it is gone.
            Err(e) if e.status == StatusCode::CONFLICT => refused = Some(e),
            Err(e) => return Err(e),
        }
    }
    Ok(canceled)
}

/// Soft delete a customer: it disappears from every query, its history stays. A customer with
/// an active subscription is refused (409) unless `cascade=true`, which cancels it first.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer ID"), DeleteCustomerQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely")),
    responses((status = 200, body = Success), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody), (status = 409, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn delete_customer(
    State(state): State<AppState>,
    metadata: CommandMetadata,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<DeleteCustomerQuery>,
) -> Result<Json<Success>, ApiError> {
    let id = parse_id(&id)?;
    // No subscription of this customer can start meanwhile: the check below holds until the
    // delete is written.
    let tenant = metadata.principal.tenant.key();
    let turn = CustomerTurn::take(&state.turns, &tenant, id.as_str()).await?;
    let deleted = delete_in_turn(&state, &metadata, &id, query.cascade.unwrap_or(false)).await;
    turn.end().await;
    deleted
}

/// Deletes the customer (canceling its subscriptions first when `cascade`) while no
/// subscription of it can start.
async fn delete_in_turn(
    state: &AppState,
    metadata: &CommandMetadata,
    id: &CustomerId,
    cascade: bool,
) -> Result<Json<Success>, ApiError> {
    let canceled_subscriptions = if cascade {
        cancel_live_subscriptions(state, metadata, id).await?
    } else {
        let live = SubscriptionListProjection::live_for_customer(
            &state.pool,
            &metadata.principal.tenant.key(),
            id.as_str(),
        )
        .await?;
        if live.is_some() {
            return Err(ApiError::conflict(HAS_ACTIVE_SUBSCRIPTION));
        }
        Vec::new()
    };
    let command = CustomerCommand::DeleteCustomer {
        tenant: metadata.principal.tenant.clone(),
        canceled_subscriptions,
    };
    state
        .customers
        .execute(id.as_str(), command, metadata)
        .await
        .map_err(|e| command_error(e, Operation::Delete))?;
    Ok(Json(Success { success: true }))
}
