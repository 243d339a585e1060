use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{customers, events, portal};

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
    ),
    modifiers(&SecretKeyAuth),
    tags((name = "customers", description = "The Customers API"),
        (name = "events", description = "The event log: audit and feed"),
        (name = "portal", description = "The customer-portal API"))
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
