//! The HTTP surface: one file per resource, assembled here.

pub mod credits;
pub mod customers;
pub mod events;
pub mod health;
pub mod invoices;
pub mod organizations;
pub mod payments;
pub mod plans;
pub mod portal;
pub mod portal_sessions;
pub mod portal_stream;
pub mod setup_intents;
pub mod subscriptions;
pub mod test_clock;
pub mod top_ups;
pub mod webhooks;

use app::App as AppState;
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::{auth, idempotency, openapi};

/// The `/v1` API: authenticated by secret key, POST and DELETE made idempotent by key.
pub fn v1(state: AppState, gate: auth::Gate) -> Router<AppState> {
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
        .route("/v1/plans", get(plans::list_plans).post(plans::create_plan))
        .route(
            "/v1/subscriptions",
            post(subscriptions::create_subscription),
        )
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::get_subscription),
        )
        .route(
            "/v1/subscriptions/{id}/cancel",
            post(subscriptions::cancel_subscription),
        )
        .route(
            "/v1/organizations",
            post(organizations::create_organization),
        )
        .route(
            "/v1/invoices",
            get(invoices::list_invoices).post(invoices::create_invoice),
        )
        .route("/v1/invoices/numbering", get(invoices::numbering))
        .route("/v1/invoices/{id}", get(invoices::get_invoice))
        .route(
            "/v1/invoices/{id}/finalize",
            post(invoices::finalize_invoice),
        )
        .route("/v1/invoices/{id}/pay", post(invoices::pay_invoice))
        .route("/v1/invoices/{id}/void", post(invoices::void_invoice))
        .route(
            "/v1/invoices/{id}/credit-notes",
            post(invoices::create_credit_note),
        )
        .route("/v1/credits/grants", post(credits::create_grant))
        .route(
            "/v1/credits/grants/{id}/revoke",
            post(credits::revoke_grant),
        )
        .route(
            "/v1/credits/customers/{customerId}/grants",
            get(credits::list_grants),
        )
        .route(
            "/v1/credits/customers/{customerId}/balance",
            get(credits::balance),
        )
        .route(
            "/v1/credits/customers/{customerId}/transactions",
            get(credits::transactions),
        )
        .route("/v1/usage", post(credits::record_usage))
        .route(
            "/v1/credits/top-ups",
            get(top_ups::list_top_ups).post(top_ups::create_top_up),
        )
        .route("/v1/payments", get(payments::list_payments))
        .route("/v1/payments/{id}", get(payments::get_payment))
        .route("/v1/test-clock", get(test_clock::get_test_clock))
        .route(
            "/v1/test-clock/advance",
            post(test_clock::advance_test_clock),
        )
        .route(
            "/v1/organizations/{id}/members",
            post(organizations::add_member),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay_by_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            gate.clone(),
            auth::require_secret_key,
        ))
        .merge(portal(state, gate))
}

/// The customer-portal routes: a secret key, or a portal session token for one customer.
fn portal(state: AppState, gate: auth::Gate) -> Router<AppState> {
    Router::new()
        .route("/v1/customers/portal/overview", get(portal::overview))
        .route(
            "/v1/customers/portal/create-setup-intent",
            post(setup_intents::create_setup_intent),
        )
        .route(
            "/v1/customers/portal/setup-intents/{intentId}/confirm",
            post(setup_intents::confirm_setup_intent),
        )
        .route(
            "/v1/customers/{id}/organization-customers",
            get(organizations::organization_customers),
        )
        .route(
            "/v1/customers/portal/set-subscription-payment-method",
            post(portal::set_subscription_payment_method),
        )
        .route(
            "/v1/customers/portal/payment-methods/{id}",
            delete(portal::remove_payment_method),
        )
        .route(
            "/v1/customers/subscription-status",
            get(portal::subscription_status),
        )
        .route("/v1/invoices/{id}/pdf", get(invoices::invoice_pdf))
        .route("/v1/customers/portal/invoices", get(portal::invoices))
        .route("/v1/customers/portal/payments", get(portal::payments))
        .route("/v1/customers/portal/credits", get(credits::portal_credits))
        .route(
            "/v1/customers/portal/credits/purchase",
            post(top_ups::purchase_top_up),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay_by_key,
        ))
        .route_layer(middleware::from_fn_with_state(
            gate.clone(),
            auth::require_key_or_session,
        ))
        .merge(live_stream(gate))
}

/// The portal's live stream: authenticated as the portal is, also by `?session=` (see
/// `portal_stream.rs`); a GET, so no idempotency layer (which would read a body).
fn live_stream(gate: auth::Gate) -> Router<AppState> {
    Router::new()
        .route(portal_stream::PATH, get(portal_stream::stream))
        .route_layer(middleware::from_fn_with_state(
            gate,
            auth::require_key_or_session,
        ))
        .route_layer(middleware::map_request(portal_stream::session_from_query))
}

/// Routes anyone may call: liveness, readiness, the API description, and the providers'
/// webhooks (signed instead: see `webhooks.rs`).
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route(
            "/v1/webhooks/stripe/{merchantId}",
            post(webhooks::stripe_webhook),
        )
        .route(
            "/v1/webhooks/dodo/{merchantId}",
            post(webhooks::dodo_webhook),
        )
        .route("/ready", get(health::ready))
        .route("/openapi.json", get(openapi::openapi_json))
}
