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
    credits, customers, events, invoices, organizations, payments, plans, portal, portal_sessions,
    portal_stream, setup_intents, subscriptions, test_clock, top_ups, webhooks,
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
        invoices::create_invoice,
        invoices::list_invoices,
        invoices::numbering,
        invoices::get_invoice,
        invoices::finalize_invoice,
        invoices::pay_invoice,
        invoices::void_invoice,
        invoices::create_credit_note,
        invoices::invoice_pdf,
        portal::invoices,
        portal::payments,
        payments::list_payments,
        payments::get_payment,
        test_clock::get_test_clock,
        test_clock::advance_test_clock,
        credits::create_grant,
        credits::list_grants,
        credits::revoke_grant,
        credits::record_usage,
        credits::balance,
        credits::transactions,
        credits::portal_credits,
        top_ups::create_top_up,
        top_ups::list_top_ups,
        top_ups::purchase_top_up,
        portal_stream::stream,
    ),
    // Path parameters' schemas are not collected from the handlers: every shape is named here.
    components(schemas(crate::responses::ErrorBody, formats::CustomerId, formats::PaymentMethodId,
        formats::SubscriptionId, formats::PlanId, formats::OrganizationId, formats::SetupIntentId,
        formats::MerchantId, formats::Email, formats::CustomerDetail, formats::CountryCode,
        formats::CurrencyCode, formats::Text, formats::RequiredText, formats::ExternalCustomerId,
        formats::CardNumber, formats::SubscriptionStatus, formats::PricingData,
        portal_stream::StreamChange)),
    modifiers(&SecretKeyAuth, &WebhookSignatures, &MiddlewareAnswers),
    tags((name = "customers", description = "The Customers API"),
        (name = "events", description = "The event log: audit and feed"),
        (name = "portal", description = "The customer-portal API"),
        (name = "plans", description = "What a merchant sells"),
        (name = "subscriptions", description = "Customers on plans"),
        (name = "organizations", description = "Customers grouped under a primary customer"),
        (name = "webhooks", description = "Payment providers' signed deliveries"),
        (name = "credits", description = "Credit grants, usage and balances"))
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

/// The shapes of the values requests carry, each a component of the document named once and
/// referenced by every field and parameter that takes it. They say what the parsers accept
/// (`domain::id`, `domain::email`, `domain::customer::details`, `domain::currency`, the
/// sandbox's card check) and what the request screen refuses: a control character
/// (U+0000–U+001F, U+007F–U+009F) in any string of a query or a JSON body.
pub mod formats {
    use std::borrow::Cow;

    use domain::id::PrefixedId;
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;

    /// No control character anywhere.
    const NO_CONTROL: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
    /// At least one character that is not white space, and no control character.
    const NOT_BLANK: &str =
        r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
    /// The longest id of any kind (`domain::id`).
    const MAX_ID_LEN: usize = 64;
    /// The longest value of a customer's detail field (`domain::customer::details`).
    const MAX_DETAIL_LEN: usize = 500;

    fn string(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    }

    fn id<T: PrefixedId>() -> RefOr<Schema> {
        string(&format!(
            "A {} id: `{}` and letters, digits or underscores, {MAX_ID_LEN} characters at most",
            T::KIND,
            T::PREFIX
        ))
        .pattern(Some(format!("^{}[A-Za-z0-9_]+$", T::PREFIX)))
        .max_length(Some(MAX_ID_LEN))
        .into()
    }

    /// A type that stands for one shape in the document: its schema, under its own name.
    macro_rules! shape {
        ($(#[$doc:meta])* $name:ident => $schema:expr) => {
            $(#[$doc])*
            pub struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    $schema
                }
            }

            impl utoipa::ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        };
    }

    shape!(CustomerId => id::<domain::id::CustomerId>());
    shape!(PaymentMethodId => id::<domain::id::PaymentMethodId>());
    shape!(SubscriptionId => id::<domain::id::SubscriptionId>());
    shape!(PlanId => id::<domain::id::PlanId>());
    shape!(OrganizationId => id::<domain::id::OrganizationId>());
    shape!(
        /// A sandbox setup intent's id, as `create-setup-intent` answers it.
        SetupIntentId => string("A sandbox setup intent id: `seti_` and letters, digits or underscores")
            .pattern(Some("^seti_[A-Za-z0-9_]+$"))
            .max_length(Some(MAX_ID_LEN))
            .into()
    );
    shape!(
        /// A merchant's id, as `billstream merchants create` prints it.
        MerchantId => string("A merchant id: `merchant_` and letters, digits or underscores")
            .pattern(Some("^merchant_[A-Za-z0-9_]+$"))
            .max_length(Some(MAX_ID_LEN))
            .into()
    );
    shape!(
        /// `local@domain.tld`, as `domain::email` parses it.
        Email => string(
            "An email address of the everyday shape local@domain.tld: a local part of at most \
             64 characters (no spaces, no dot first, last or twice in a row), and a domain of \
             two or more dotted labels of letters, digits and inner hyphens; 254 characters \
             at most. Unique among the merchant's live customers, compared case-insensitively.",
        )
        .pattern(Some(
            r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$",
        ))
        .max_length(Some(254))
        .examples(["customer@example.com"])
        .into()
    );
    shape!(
        /// A customer's detail field.
        CustomerDetail => string(
            "Text of at most 500 characters; surrounding white space is trimmed, and a blank \
             value leaves the field empty",
        )
        .pattern(Some(NO_CONTROL))
        .max_length(Some(MAX_DETAIL_LEN))
        .into()
    );
    shape!(
        /// A two-letter country code.
        CountryCode => string(
            "A two-letter ISO 3166-1 country code, stored uppercase; empty leaves the field empty",
        )
        .pattern(Some("^([A-Za-z]{2})?$"))
        .examples(["US"])
        .into()
    );
    shape!(
        /// A three-letter currency code.
        CurrencyCode => string("A three-letter ISO 4217 currency code, stored uppercase")
            .pattern(Some("^[A-Za-z]{3}$"))
            .examples(["USD"])
            .into()
    );
    shape!(
        /// Free text.
        Text => string("Text; surrounding white space is trimmed")
            .pattern(Some(NO_CONTROL))
            .into()
    );
    shape!(
        /// Text that must say something.
        RequiredText => string("Text with at least one character that is not white space")
            .pattern(Some(NOT_BLANK))
            .into()
    );
    shape!(
        /// The merchant's own id of a customer, as a lookup key.
        ExternalCustomerId => string(
            "The merchant's own id of the customer (its `externalCustomerId`); blank counts as \
             not given",
        )
        .pattern(Some(NOT_BLANK))
        .max_length(Some(MAX_DETAIL_LEN))
        .examples(["user_ext_123"])
        .into()
    );
    shape!(
        /// A card number for the sandbox.
        CardNumber => string(
            "12 to 19 digits, spaces allowed between them; the number must pass the Luhn check",
        )
        .pattern(Some("^( *[0-9]){12,19} *$"))
        .examples(["4242 4242 4242 4242"])
        .into()
    );
    shape!(
        /// What a subscription's `status` can be.
        SubscriptionStatus => string(
            "`active`; `past_due` when a payment failed (the customer keeps the subscription \
             until `gracePeriodEndsAt`); `canceled`",
        )
        .enum_values(Some(["active", "past_due", "canceled"]))
        .into()
    );
    shape!(
        /// A plan's pricing.
        PricingData => ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "An object with a `components` array; the components are kept as given",
            ))
            .property("components", ObjectBuilder::new().schema_type(Type::Array))
            .required("components")
            .examples([serde_json::json!({"components": [{"type": "flat", "amountCents": 5000}]})])
            .into()
    );
}
