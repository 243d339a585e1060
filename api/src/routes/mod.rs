//! The HTTP surface: one file per resource, assembled here.

pub mod customers;
pub mod events;
pub mod health;
pub mod openapi;
pub mod portal;
pub mod portal_sessions;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;
use crate::{auth, idempotency};

/// `{"success": true}`, the seed's answer to a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

/// Every error: `{"error": "...", "code": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Customer not found or access denied")]
    pub error: String,
    #[schema(example = "not_found")]
    pub code: String,
}

/// The `/v1` API: authenticated by secret key, POST and DELETE made idempotent by key.
pub fn v1(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/customers",
            get(customers::list_customers).post(customers::create_customer),
        )
        .route(
            "/v1/customers/{id}",
            get(customers::get_customer)
                .post(customers::update_customer)
                .delete(customers::delete_customer),
        )
        .route("/v1/customers/{id}/events", get(events::customer_events))
        .route(
            "/v1/customers/portal/sessions",
            post(portal_sessions::create_session),
        )
        .route("/v1/events", get(events::feed))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay_by_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_secret_key,
        ))
        .merge(portal(state))
}

/// The customer-portal routes: a secret key, or a portal session token for one customer.
fn portal(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/customers/portal/overview", get(portal::overview))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay_by_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            state,
            auth::require_key_or_session,
        ))
}

/// Routes anyone may call: liveness, readiness, the API description.
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/openapi.json", get(openapi::openapi_json))
}
