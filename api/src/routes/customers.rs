//! The Customers API of the seed: list, get, create, update, soft-delete.

use app::customers::{
    CustomerChanges, CustomerFields, CustomerQuery, ListedCustomer as AppListedCustomer,
    NewCustomer,
};
use app::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use projections::read_models::customer_list::CustomerListView;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AnyOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::extract::{present, Actor, Caller, JsonBody, QueryParams};
use crate::openapi::formats;
use crate::responses::{ErrorBody, Success};
use crate::streamed_list::streamed_list;

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
            id: view.id.to_string(),
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

/// A customer with the payment aggregates `includePaymentData=true` asks for.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerWithPaymentData {
    #[serde(flatten)]
    pub customer: CustomerBody,
    pub customer_organization_id: Option<String>,
    #[schema(example = "primary")]
    pub org_role: Option<String>,
    /// Succeeded charges less refunds, in `currency`.
    pub total_payments_cents: i64,
    /// Succeeded charges, in `currency`.
    pub payment_count: i64,
    /// The currency the customer paid in most recently; none before a first payment.
    #[schema(example = "USD")]
    pub currency: Option<String>,
    /// Every currency's totals, when the customer paid in more than one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_totals: Option<Vec<PaymentTotalBody>>,
}

/// A customer's payments in one currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentTotalBody {
    pub currency: String,
    pub total_payments_cents: i64,
    pub payment_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerEnvelope {
    pub customer: CustomerBody,
}

/// A listed customer: with its payment data when `includePaymentData=true` asked for it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ListedCustomer {
    Basic(CustomerBody),
    WithPaymentData(CustomerWithPaymentData),
}

/// `anyOf` the two shapes, not the `oneOf` a derive would give: a customer with payment data
/// has every field of one without, so it matches both.
impl PartialSchema for ListedCustomer {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(CustomerBody::name()))
            .item(Ref::from_schema_name(CustomerWithPaymentData::name()))
            .description(Some(
                "A customer; with its payment data when `includePaymentData=true`",
            ))
            .into()
    }
}

impl ToSchema for ListedCustomer {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((CustomerBody::name().into(), CustomerBody::schema()));
        schemas.push((
            CustomerWithPaymentData::name().into(),
            CustomerWithPaymentData::schema(),
        ));
        CustomerBody::schemas(schemas);
        CustomerWithPaymentData::schemas(schemas);
    }
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
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return customers after this customer id (keyset pagination).
    #[param(value_type = Option<formats::CustomerId>)]
    pub starting_after: Option<String>,
    /// Only the customer with this email (case-insensitive).
    #[param(value_type = Option<formats::Text>)]
    pub email: Option<String>,
    /// Only the customer with this external id.
    #[param(value_type = Option<formats::Text>)]
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCustomerRequest {
    /// Required; unique among the merchant's customers, compared case-insensitively.
    #[schema(value_type = formats::Email, required = true)]
    pub email: Option<String>,
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub name: Option<String>,
    /// Unique among the merchant's live customers.
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub external_customer_id: Option<String>,
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_address_line1: Option<String>,
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_address_line2: Option<String>,
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_city: Option<String>,
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_postal_code: Option<String>,
    #[schema(value_type = Option<formats::CountryCode>)]
    pub billing_country: Option<String>,
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub tax_id: Option<String>,
}

/// Every field is optional; only fields present change. `null` or `""` clears a field
/// (the email cannot be cleared).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCustomerRequest {
    /// Cannot be cleared: `null` or blank is refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = formats::Email, required = false)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub external_customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_address_line1: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_address_line2: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_city: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub billing_postal_code: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CountryCode>)]
    pub billing_country: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<formats::CustomerDetail>)]
    pub tax_id: Option<Option<String>>,
    /// Allow an email another live customer already has (not recommended).
    pub dangerously_allow_same_email_for_different_customers: Option<bool>,
}

/// A request's eight detail fields, which both requests name alike, as one `CustomerFields`.
macro_rules! detail_fields {
    ($request:ident) => {
        CustomerFields {
            name: $request.name,
            external_customer_id: $request.external_customer_id,
            billing_address_line1: $request.billing_address_line1,
            billing_address_line2: $request.billing_address_line2,
            billing_city: $request.billing_city,
            billing_postal_code: $request.billing_postal_code,
            billing_country: $request.billing_country,
            tax_id: $request.tax_id,
        }
    };
}

impl CreateCustomerRequest {
    fn into_new(self) -> NewCustomer {
        NewCustomer {
            email: self.email,
            fields: detail_fields!(self),
        }
    }
}

impl UpdateCustomerRequest {
    fn into_changes(self) -> CustomerChanges {
        CustomerChanges {
            email: self.email,
            fields: detail_fields!(self),
            allow_shared_email: self
                .dangerously_allow_same_email_for_different_customers
                .unwrap_or(false),
        }
    }
}

/// Get all customers for the authenticated merchant.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(ListCustomersQuery),
    responses((status = 200, body = CustomerListEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_customers(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<ListCustomersQuery>,
) -> Result<Response, ApiError> {
    let with_payment_data = query.include_payment_data.unwrap_or(false);
    let whole = query.limit.is_none();
    let query = CustomerQuery {
        limit: query.limit,
        starting_after: query.starting_after,
        email: query.email,
        external_customer_id: query.external_customer_id,
        include_payment_data: with_payment_data,
    };
    if whole {
        // The seed's "get all customers": streamed a page at a time, so a list of any length
        // costs the server one page of memory.
        let pages = app.stream_customers(&principal, query)?.map(move |page| {
            page.map(|page| {
                page.into_iter()
                    .map(|listed| ListedCustomer::new(listed, with_payment_data))
                    .collect::<Vec<_>>()
            })
        });
        return Ok(streamed_list("customers", pages));
    }
    let (listed, has_more) = app.list_customers(&principal, query).await?;
    let customers = listed
        .into_iter()
        .map(|listed| ListedCustomer::new(listed, with_payment_data))
        .collect();
    Ok(Json(CustomerListEnvelope {
        customers,
        has_more,
    })
    .into_response())
}

impl ListedCustomer {
    fn new(listed: AppListedCustomer, with_payment_data: bool) -> Self {
        let customer = CustomerBody::from(listed.customer);
        if !with_payment_data {
            return ListedCustomer::Basic(customer);
        }
        let membership = listed.membership;
        // The payment-aggregate read model, most recently paid currency first.
        let latest = listed.payments.first();
        let payment_totals = (listed.payments.len() > 1).then(|| {
            listed
                .payments
                .iter()
                .map(|t| PaymentTotalBody {
                    currency: t.currency.clone(),
                    total_payments_cents: t.total_payments_cents,
                    payment_count: t.payment_count,
                })
                .collect()
        });
        ListedCustomer::WithPaymentData(CustomerWithPaymentData {
            customer,
            customer_organization_id: membership.as_ref().map(|m| m.organization_id.to_string()),
            org_role: membership.map(|m| m.role),
            total_payments_cents: latest.map_or(0, |t| t.total_payments_cents),
            payment_count: latest.map_or(0, |t| t.payment_count),
            currency: latest.map(|t| t.currency.clone()),
            payment_totals,
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetCustomerQuery {
    /// The customer as it was at this instant (ISO 8601), folded from its events.
    pub as_of: Option<DateTime<Utc>>,
    /// The customer as it was after its first `version` events.
    #[param(minimum = 0)]
    pub version: Option<i64>,
}

/// Get a specific customer by their ID; with `asOf` or `version`, as it was then (a customer
/// deleted since is shown with its `deletedAt` unset, as it was).
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = formats::CustomerId, Path, description = "Customer ID"), GetCustomerQuery),
    responses((status = 200, body = CustomerEnvelope),
        (status = 400, body = ErrorBody, description = "A malformed id, or both `asOf` and `version`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn get_customer(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<GetCustomerQuery>,
) -> Result<Json<CustomerEnvelope>, ApiError> {
    // The log numbers events as i64: a version past that names no state, and is refused like
    // one below zero rather than read as "the latest".
    let version = query
        .version
        .map(u64::try_from)
        .transpose()
        .map_err(|_| ApiError::bad_request("version must be 0 or more"))?;
    let customer = app.customer(&principal, &id, query.as_of, version).await?;
    Ok(Json(CustomerEnvelope {
        customer: customer.into(),
    }))
}

/// Create a new customer for the authenticated merchant.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = CreateCustomerRequest,
    responses((status = 201, body = CustomerEnvelope), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody,
            description = "Another live customer has this email or external id")),
    security(("secret_key" = [])))]
pub async fn create_customer(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<CreateCustomerRequest>,
) -> Result<(StatusCode, Json<CustomerEnvelope>), ApiError> {
    let customer = app.create_customer(&metadata, body.into_new()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CustomerEnvelope {
            customer: customer.into(),
        }),
    ))
}

/// Update an existing customer's information; only provided fields change.
#[utoipa::path(post, path = "/v1/customers/{id}", tag = "customers", request_body = UpdateCustomerRequest,
    params(("id" = formats::CustomerId, Path, description = "Customer ID")),
    responses((status = 200, body = CustomerEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody,
            description = "Another live customer has this email (see `dangerouslyAllowSameEmailForDifferentCustomers`) or external id")),
    security(("secret_key" = [])))]
pub async fn update_customer(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateCustomerRequest>,
) -> Result<Json<CustomerEnvelope>, ApiError> {
    let customer = app
        .update_customer(&metadata, &id, body.into_changes())
        .await?;
    Ok(Json(CustomerEnvelope {
        customer: customer.into(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteCustomerQuery {
    /// Cancel the customer's active subscription first, instead of refusing with a 409.
    pub cascade: Option<bool>,
}

/// Soft delete a customer: it disappears from every query, its history stays. A customer with
/// an active subscription is refused (409) unless `cascade=true`, which cancels it first.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = formats::CustomerId, Path, description = "Customer ID"), DeleteCustomerQuery),
    responses((status = 200, body = Success), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody,
            description = "The customer has an active subscription and `cascade` is not true")),
    security(("secret_key" = [])))]
pub async fn delete_customer(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<DeleteCustomerQuery>,
) -> Result<Json<Success>, ApiError> {
    app.delete_customer(&metadata, &id, query.cascade.unwrap_or(false))
        .await?;
    Ok(Success::yes())
}
