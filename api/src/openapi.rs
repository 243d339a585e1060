use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    customers, events, organizations, plans, portal, portal_sessions, setup_intents, subscriptions,
    webhooks,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue};

#[derive(OpenApi)]
#[openapi(
    info(title = "billstream", description = "Event-sourced billing: customers, payment methods, subscriptions, invoices."),
    paths(
        customers::list_customers,
        customers::get_customer,
        customers::create_customer,
        customers::update_customer,
        customers::delete_customer,
        events::customer_events,
        events::feed,
        portal::overview,
        portal::set_subscription_payment_method,
        portal::remove_payment_method,
        portal::subscription_status,
        portal_sessions::create_session,
        plans::create_plan,
        plans::list_plans,
        subscriptions::create_subscription,
        subscriptions::get_subscription,
        subscriptions::cancel_subscription,
        organizations::create_organization,
        organizations::add_member,
        organizations::organization_customers,
        setup_intents::create_setup_intent,
        setup_intents::confirm_setup_intent,
        webhooks::stripe_webhook,
        webhooks::dodo_webhook,
    ),
    modifiers(&SecretKeyAuth, &WebhookSignatures),
    tags((name = "customers", description = "The Customers API"),
        (name = "events", description = "The event log: audit and feed"),
        (name = "portal", description = "The customer-portal API"),
        (name = "plans", description = "What a merchant sells"),
        (name = "subscriptions", description = "Customers on plans"),
        (name = "organizations", description = "Customers grouped under a primary customer"),
        (name = "webhooks", description = "Payment providers' signed deliveries"))
)]
pub struct ApiDoc;

struct SecretKeyAuth;

impl Modify for SecretKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A secret key: sk_test_… or sk_live_…"))
                    .build(),
            ),
        );
    }
}

/// The API description, OpenAPI 3.1.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The signature schemes of the webhook endpoints, for the API description.
pub struct WebhookSignatures;

impl Modify for WebhookSignatures {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "stripe_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                providers::stripe_webhook::SIGNATURE_HEADER,
                "HMAC-SHA256 of the timestamp and body with the merchant's Stripe endpoint secret",
            ))),
        );
        components.add_security_scheme(
            "standard_webhooks_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                providers::standard_webhooks::SIGNATURE_HEADER,
                "Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature, \
                 keyed with the merchant's Dodo endpoint secret",
            ))),
        );
    }
}
