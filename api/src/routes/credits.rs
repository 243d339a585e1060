//! Credits: grants (`POST /v1/credits/grants`, list, revoke), usage (`POST /v1/usage`) and a
//! customer's balances (`GET /v1/credits/customers/{customerId}/balance`).

use app::credits::{CreditSummary, NewCreditGrant, NewUsage, RecordedUsage};
use app::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use projections::read_models::credit_balances::{BalanceView, GrantView, TransactionView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody, QueryParams};
use crate::pagination::page_limit;
use crate::responses::{ErrorBody, TopUpBody};
use crate::streamed_list::paged_list;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantBody {
    pub id: String,
    pub customer_id: String,
    pub feature_slug: String,
    pub initial_amount: i64,
    pub remaining_amount: i64,
    /// `subscription`, `manual`, `promotion`, `refund` or `topup`.
    pub source: String,
    /// `active`, `depleted`, `expired` or `revoked`, at the tenant's now.
    pub status: String,
    pub starts_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub priority: i32,
    pub reference_code: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl GrantBody {
    fn new(grant: GrantView, now: DateTime<Utc>) -> Self {
        Self {
            status: grant.status_at(now).to_owned(),
            id: grant.id,
            customer_id: grant.customer_id,
            feature_slug: grant.feature_slug,
            initial_amount: grant.initial_amount,
            remaining_amount: grant.remaining_amount,
            source: grant.source,
            starts_at: grant.starts_at,
            expires_at: grant.expires_at,
            priority: grant.priority,
            reference_code: grant.reference_code,
            notes: grant.notes,
            created_at: grant.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantEnvelope {
    pub grant: GrantBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantListEnvelope {
    pub grants: Vec<GrantBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    #[schema(required = true)]
    pub customer_id: Option<String>,
    #[schema(required = true, example = "api_calls")]
    pub feature_slug: Option<String>,
    #[schema(required = true, minimum = 1, maximum = 1000000000000_i64)]
    pub amount: Option<i64>,
    /// `manual` (the default), `promotion` or `refund`.
    pub source: Option<String>,
    /// Not before it starts.
    pub expires_at: Option<DateTime<Utc>>,
    /// Now when not given.
    pub starts_at: Option<DateTime<Utc>>,
    /// 0 to 100, lower consumed first; 50 when not given.
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
    #[schema(max_length = 500)]
    pub reference_code: Option<String>,
    #[schema(max_length = 500)]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantsQuery {
    pub feature_slug: Option<String>,
    /// `active`, `depleted`, `expired` or `revoked`.
    pub status: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageRequest {
    /// Ours, or give `externalCustomerId`.
    pub customer_id: Option<String>,
    /// The merchant's own id of the customer.
    pub external_customer_id: Option<String>,
    #[schema(required = true, example = "api_calls")]
    pub feature_slug: Option<String>,
    #[schema(required = true, minimum = 1, maximum = 1000000000000_i64)]
    pub quantity: Option<i64>,
    /// The same key records the usage once and answers the same (kept 30 days).
    #[schema(required = true, min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
    /// When it happened; now when not given.
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageBody {
    pub id: String,
    pub feature_slug: String,
    pub quantity: i64,
    pub credits_consumed: i64,
    /// Billed in arrears, when the plan bills the feature's usage.
    pub overage_units: i64,
    /// The balance the usage left.
    pub remaining: i64,
}

impl From<RecordedUsage> for UsageBody {
    fn from(usage: RecordedUsage) -> Self {
        Self {
            id: usage.outcome.usage_id.to_string(),
            feature_slug: usage.feature_slug,
            quantity: usage.outcome.quantity,
            credits_consumed: usage.outcome.credits_consumed,
            overage_units: usage.outcome.overage_units,
            remaining: usage.outcome.remaining_after,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageEnvelope {
    pub usage: UsageBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceBody {
    pub feature_slug: String,
    /// What the merchant calls the feature (its plan allowance's name), or its slug.
    pub name: String,
    /// What usage may draw now.
    pub remaining: i64,
    /// The initial amounts of the grants that still count.
    pub total: i64,
    pub used: i64,
    pub next_expiry: Option<DateTime<Utc>>,
    pub grants: Vec<GrantBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceEnvelope {
    pub balances: Vec<BalanceBody>,
}

/// Grant credits to a customer.
#[utoipa::path(post, path = "/v1/credits/grants", tag = "credits", request_body = GrantRequest,
    responses((status = 201, body = GrantEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such customer")),
    security(("secret_key" = [])))]
pub async fn create_grant(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<GrantRequest>,
) -> Result<(StatusCode, Json<GrantEnvelope>), ApiError> {
    let grant = app
        .grant_credits(
            &metadata,
            NewCreditGrant {
                customer_id: body.customer_id,
                feature_slug: body.feature_slug,
                amount: body.amount,
                source: body.source,
                priority: body.priority,
                starts_at: body.starts_at,
                expires_at: body.expires_at,
                reference_code: body.reference_code,
                notes: body.notes,
            },
        )
        .await?;
    let now = app.clock.now_for(metadata.tenant());
    Ok((
        StatusCode::CREATED,
        Json(GrantEnvelope {
            grant: GrantBody::new(grant, now),
        }),
    ))
}

/// A customer's grants, oldest first.
#[utoipa::path(get, path = "/v1/credits/customers/{customerId}/grants", tag = "credits",
    params(("customerId" = String, Path, description = "Customer ID"), GrantsQuery),
    responses((status = 200, body = GrantListEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn list_grants(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(customer_id): Path<String>,
    QueryParams(query): QueryParams<GrantsQuery>,
) -> Result<Json<GrantListEnvelope>, ApiError> {
    const STATUSES: [&str; 4] = ["active", "depleted", "expired", "revoked"];
    if query
        .status
        .as_deref()
        .is_some_and(|status| !STATUSES.contains(&status))
    {
        return Err(ApiError::bad_request(
            "status must be one of active, depleted, expired, revoked",
        ));
    }
    let grants = app
        .credit_grants(&principal, &customer_id, query.feature_slug.as_deref())
        .await?;
    let now = app.clock.now_for(&principal.tenant);
    let grants = grants
        .into_iter()
        .map(|grant| GrantBody::new(grant, now))
        .filter(|grant| query.status.as_deref().is_none_or(|s| grant.status == s))
        .collect();
    Ok(Json(GrantListEnvelope { grants }))
}

/// Revoke a grant: what is left of it is forfeited.
#[utoipa::path(post, path = "/v1/credits/grants/{id}/revoke", tag = "credits",
    params(("id" = String, Path, description = "Credit grant ID")),
    responses((status = 200, body = GrantEnvelope),
        (status = 404, body = ErrorBody, description = "Credit grant not found"),
        (status = 409, body = ErrorBody, description = "Already revoked, or expired")),
    security(("secret_key" = [])))]
pub async fn revoke_grant(
    State(app): State<App>,
    Actor(metadata): Actor,
    Path(id): Path<String>,
) -> Result<Json<GrantEnvelope>, ApiError> {
    let grant = app.revoke_credit_grant(&metadata, &id).await?;
    let now = app.clock.now_for(metadata.tenant());
    Ok(Json(GrantEnvelope {
        grant: GrantBody::new(grant, now),
    }))
}

/// Record usage of a feature: drawn from the customer's credits; what they do not cover is
/// overage when the plan bills the feature, else 402 "Insufficient credits" and nothing is
/// consumed.
#[utoipa::path(post, path = "/v1/usage", tag = "credits", request_body = UsageRequest,
    responses((status = 200, body = UsageEnvelope, description = "Recorded, or recorded before under the same idempotencyKey"),
        (status = 400, body = ErrorBody),
        (status = 402, body = ErrorBody, description = "Insufficient credits"),
        (status = 404, body = ErrorBody, description = "No such customer")),
    security(("secret_key" = [])))]
pub async fn record_usage(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<UsageRequest>,
) -> Result<Json<UsageEnvelope>, ApiError> {
    let usage = app
        .record_usage(
            &metadata,
            NewUsage {
                customer_id: body.customer_id,
                external_customer_id: body.external_customer_id,
                feature_slug: body.feature_slug,
                quantity: body.quantity,
                idempotency_key: body.idempotency_key,
                timestamp: body.timestamp,
            },
        )
        .await?;
    Ok(Json(UsageEnvelope {
        usage: usage.into(),
    }))
}

/// A customer's balance of each feature, at the tenant's now, with its grants.
#[utoipa::path(get, path = "/v1/credits/customers/{customerId}/balance", tag = "credits",
    params(("customerId" = String, Path, description = "Customer ID")),
    responses((status = 200, body = BalanceEnvelope), (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn balance(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(customer_id): Path<String>,
) -> Result<Json<BalanceEnvelope>, ApiError> {
    let summary = app.credit_summary(&principal, &customer_id, 0).await?;
    Ok(Json(BalanceEnvelope {
        balances: balance_bodies(summary),
    }))
}

/// Each feature's balance with its grants, as the balance and the portal show them.
fn balance_bodies(summary: CreditSummary) -> Vec<BalanceBody> {
    let CreditSummary {
        balances,
        grants,
        now,
        ..
    } = summary;
    balances
        .into_iter()
        .map(|balance: BalanceView| BalanceBody {
            name: balance.name.clone(),
            grants: grants
                .iter()
                .filter(|grant| grant.feature_slug == balance.feature_slug)
                .cloned()
                .map(|grant| GrantBody::new(grant, now))
                .collect(),
            feature_slug: balance.feature_slug,
            remaining: balance.remaining,
            total: balance.total,
            used: balance.used,
            next_expiry: balance.next_expiry,
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionBody {
    pub id: String,
    pub feature_slug: String,
    /// `grant`, `usage`, `expiry` or `revocation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Signed: what a grant added; what a usage drew from credits or an ending forfeited,
    /// negative.
    pub amount: i64,
    pub grant_id: Option<String>,
    pub usage_id: Option<String>,
    /// A usage's whole quantity, and what of it was overage.
    pub quantity: Option<i64>,
    pub overage_units: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl From<TransactionView> for TransactionBody {
    fn from(view: TransactionView) -> Self {
        Self {
            id: view.id,
            feature_slug: view.feature_slug,
            kind: view.kind,
            amount: view.amount,
            grant_id: view.grant_id,
            usage_id: view.usage_id,
            quantity: view.quantity,
            overage_units: view.overage_units,
            created_at: view.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransactionListEnvelope {
    pub transactions: Vec<TransactionBody>,
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransactionsQuery {
    pub feature_slug: Option<String>,
    /// Page size, 1 to 1000; without it, the whole ledger.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return entries after this one.
    pub starting_after: Option<String>,
}

/// A customer's credit ledger: grants, usage, expiries and revocations, in the order they
/// happened.
#[utoipa::path(get, path = "/v1/credits/customers/{customerId}/transactions", tag = "credits",
    params(("customerId" = String, Path, description = "Customer ID"), TransactionsQuery),
    responses((status = 200, body = TransactionListEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn transactions(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(customer_id): Path<String>,
    QueryParams(query): QueryParams<TransactionsQuery>,
) -> Result<Response, ApiError> {
    let limit = page_limit(query.limit)?;
    let feature = query.feature_slug;
    let page = move |cursor: Option<String>, limit: i64| {
        let (app, principal, customer_id, feature) = (
            app.clone(),
            principal.clone(),
            customer_id.clone(),
            feature.clone(),
        );
        async move {
            let (entries, more) = app
                .credit_transactions(
                    &principal,
                    &customer_id,
                    feature.as_deref(),
                    cursor.as_deref(),
                    limit,
                )
                .await?;
            let entries: Vec<TransactionBody> =
                entries.into_iter().map(TransactionBody::from).collect();
            Ok((entries, more))
        }
    };
    paged_list(
        "transactions",
        limit,
        query.starting_after,
        page,
        |entry: &TransactionBody| entry.id.clone(),
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PortalCreditsQuery {
    /// The merchant's own id of the customer: required with a secret key; a portal session
    /// may leave it out, or must name its own customer.
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalCreditsBody {
    pub balances: Vec<BalanceBody>,
    /// Top-ups offered on the customer's plan.
    pub top_ups: Vec<TopUpBody>,
    /// The most recent ledger entries, newest last.
    pub transactions: Vec<TransactionBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalCreditsEnvelope {
    pub credits: PortalCreditsBody,
}

/// How many of its latest ledger entries the portal's credits view shows.
const PORTAL_TRANSACTIONS: i64 = 20;

/// The portal customer's credits: balances with their grants, and the latest ledger entries.
#[utoipa::path(get, path = "/v1/customers/portal/credits", tag = "portal",
    params(PortalCreditsQuery),
    responses((status = 200, body = PortalCreditsEnvelope),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn portal_credits(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<PortalCreditsQuery>,
) -> Result<Json<PortalCreditsEnvelope>, ApiError> {
    let customer = app
        .portal_customer(&principal, query.external_customer_id.as_deref())
        .await?;
    let mut summary = app
        .credit_summary(&principal, customer.id.as_str(), PORTAL_TRANSACTIONS)
        .await?;
    let top_ups = app
        .offered_top_ups(&principal.tenant, &customer.id)
        .await?
        .into_iter()
        .map(TopUpBody::from)
        .collect();
    let transactions = std::mem::take(&mut summary.transactions)
        .into_iter()
        .map(TransactionBody::from)
        .collect();
    Ok(Json(PortalCreditsEnvelope {
        credits: PortalCreditsBody {
            balances: balance_bodies(summary),
            top_ups,
            transactions,
        },
    }))
}
