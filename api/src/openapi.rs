//! The API description (`GET /openapi.json`, OpenAPI 3.1), generated from the handlers'
//! `#[utoipa::path]` annotations. The annotations say what each handler answers; the
//! modifiers below add what the layers in front of every handler answer (`lib.rs`,
//! `routes/mod.rs`): the request screen, authentication, idempotency and the body limit. A
//! schemathesis run against this document (`.ci/schemathesis`) holds the two to each other.

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Components, ContentBuilder, HeaderBuilder, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    customers, events, organizations, plans, portal, portal_sessions, setup_intents, subscriptions,
    webhooks,
};

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
    components(schemas(crate::responses::ErrorBody)),
    modifiers(&SecretKeyAuth, &WebhookSignatures, &MiddlewareAnswers),
    tags((name = "customers", description = "The Customers API"),
        (name = "events", description = "The event log: audit and feed"),
        (name = "portal", description = "The customer-portal API"),
        (name = "plans", description = "What a merchant sells"),
        (name = "subscriptions", description = "Customers on plans"),
        (name = "organizations", description = "Customers grouped under a primary customer"),
        (name = "webhooks", description = "Payment providers' signed deliveries"))
)]
pub struct ApiDoc;

/// The security scheme of the merchant's routes.
pub const SECRET_KEY: &str = "secret_key";
/// The security scheme the portal routes take besides a secret key.
pub const PORTAL_SESSION: &str = "portal_session";

struct SecretKeyAuth;

impl Modify for SecretKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECRET_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A secret key: sk_test_… or sk_live_…"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            PORTAL_SESSION,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A portal session token (ps_…) from POST /v1/customers/portal/sessions: \
                         its own customer's portal routes only, for an hour",
                    ))
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

/// What the layers in front of the handlers answer, added to every operation they guard, so
/// that no handler's annotation has to repeat them (or can forget one):
///
/// - every route: 400 for a query with a control character (`screen_request`);
/// - routes behind a key or session (`auth.rs`): 401 for a missing or unknown credential, 429
///   with `Retry-After` once an address has failed too often (`failed_auth.rs`);
/// - their POSTs and DELETEs (`idempotency.rs`): the `Idempotency-Key` header, 400 for a key
///   out of shape, 409 for a key reused with another request;
/// - routes with a body: 400 for a body that is not the JSON asked for, 413 over 1 MiB. A JSON
///   body is read as `{}` when empty (`extract.rs`), so one whose schema requires nothing is
///   optional.
///
/// Responses are only added, never replaced: a handler's own description of a status stands.
/// Every response left without a description gets its status's.
pub struct MiddlewareAnswers;

impl Modify for MiddlewareAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.clone().unwrap_or_default();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (true, item.delete.as_mut()),
                (false, item.put.as_mut()),
                (false, item.patch.as_mut()),
            ];
            for (writes, operation) in operations {
                if let Some(operation) = operation {
                    add_middleware_answers(operation, writes, &components);
                }
            }
        }
    }
}

fn add_middleware_answers(operation: &mut Operation, writes: bool, components: &Components) {
    add_error(operation, 400);
    let authenticated = operation
        .security
        .as_ref()
        .and_then(|security| serde_json::to_value(security).ok())
        .is_some_and(|security| {
            let text = security.to_string();
            text.contains(SECRET_KEY) || text.contains(PORTAL_SESSION)
        });
    if authenticated {
        add_error(operation, 401);
        if !operation.responses.responses.contains_key("429") {
            let retry_after = HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before presenting a credential again"))
                .build();
            let response = ResponseBuilder::new()
                .description(description(429))
                .content("application/json", error_content())
                .header("Retry-After", retry_after)
                .build();
            operation
                .responses
                .responses
                .insert("429".to_owned(), RefOr::T(response));
        }
        if writes {
            add_idempotency_key(operation);
            add_error(operation, 409);
        }
    }
    if operation.request_body.is_some() {
        add_error(operation, 413);
    }
    if let Some(body) = operation.request_body.as_mut() {
        if requires_nothing(body, components) {
            body.required = Some(Required::False);
        }
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                let status = status.parse().unwrap_or_default();
                response.description = description(status).to_owned();
            }
        }
    }
}

/// Adds `status` with the error body, unless the operation describes it already.
fn add_error(operation: &mut Operation, status: u16) {
    operation
        .responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description(status))
                    .content("application/json", error_content())
                    .build(),
            )
        });
}

fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build()
}

fn add_idempotency_key(operation: &mut Operation) {
    let parameters = operation.parameters.get_or_insert_with(Vec::new);
    if parameters
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case(crate::idempotency::HEADER))
    {
        return;
    }
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some(r"^[!-~]([\t !-~]*[!-~])?$"));
    parameters.push(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Run the request once: a retry with the same key and request gets the stored \
                 answer (with `Idempotent-Replayed: true`); the same key with another request \
                 is a 409. Keys are kept 25 hours, per caller.",
            ))
            .schema(Some(schema))
            .build(),
    );
}

/// Whether a JSON body's schema is a component that requires no property, so that `{}`, and
/// therefore an empty body, is a valid request.
fn requires_nothing(body: &RequestBody, components: &Components) -> bool {
    let Some(RefOr::Ref(reference)) = body
        .content
        .get("application/json")
        .and_then(|content| content.schema.as_ref())
    else {
        return false;
    };
    let name = reference
        .ref_location
        .rsplit('/')
        .next()
        .unwrap_or_default();
    matches!(
        components.schemas.get(name),
        Some(RefOr::T(Schema::Object(object))) if object.required.is_empty()
    )
}

/// What a status means when the handler's annotation does not say.
fn description(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "The request is malformed (JSON, query, id, header) or breaks a rule; `error` says which",
        401 => "Missing or unknown API key, or an expired portal session",
        402 => "The card was refused",
        404 => "Not found, or not the caller's: another tenant's is not found either",
        409 => "In conflict with the current state, or an Idempotency-Key reused with another request",
        413 => "The request body is over 1 MiB",
        429 => "Too many failed authentication attempts from this address; retry after Retry-After seconds",
        502 => "The payment provider failed; try again later",
        _ => "",
    }
}
