//! A fake Stripe API: customers, setup intents, payment methods, payment intents and refunds,
//! in Stripe's JSON shapes, plus signed `setup_intent.succeeded` deliveries as Stripe would send
//! them.
//!
//! Charges decide by the card, as Stripe's test cards do. Besides the cards registered with
//! [`FakeStripe::add_card`], the fake knows Stripe's test PaymentMethods [`TEST_PAYMENT_METHODS`]
//! (`pm_card_visa`, `pm_card_chargeDeclined`, …) without registration. A charge of a card whose
//! last four digits are in [`CHARGE_DECLINES`] is declined with Stripe's HTTP 402 `card_error`:
//!
//! | Last four | Test PaymentMethod                        | `code`          | `decline_code`       |
//! |-----------|-------------------------------------------|-----------------|----------------------|
//! | `0002`    | `pm_card_chargeDeclined`                  | `card_declined` | `generic_decline`    |
//! | `0341`    | `pm_card_chargeCustomerFail`              | `card_declined` | `generic_decline`    |
//! | `9995`    | `pm_card_chargeDeclinedInsufficientFunds` | `card_declined` | `insufficient_funds` |
//! | `0069`    | `pm_card_chargeDeclinedExpiredCard`       | `expired_card`  | `expired_card`       |
//!
//! A charge of `3184` (`pm_card_authenticationRequired`) answers 200 with status
//! `requires_action`, waiting for a cardholder who is not there. Every other card is charged
//! at once (`succeeded`). Like Stripe, a request repeated with the
//! same `Idempotency-Key` gets the first answer again, declines included, and creates nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::provider_now;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::recorder::{record, RecordedRequest, RequestLog};
use super::{random_id, Server};
use crate::stripe::FORM_CONTENT_TYPE;
use crate::stripe_webhook::{self, SETUP_INTENT_SUCCEEDED};

/// Stripe's test PaymentMethods the fake accepts without [`FakeStripe::add_card`]:
/// `(id, brand, last four digits)`.
pub const TEST_PAYMENT_METHODS: [(&str, &str, &str); 7] = [
    ("pm_card_visa", "visa", "4242"),
    ("pm_card_mastercard", "mastercard", "4444"),
    ("pm_card_chargeDeclined", "visa", "0002"),
    ("pm_card_chargeCustomerFail", "visa", "0341"),
    ("pm_card_chargeDeclinedInsufficientFunds", "visa", "9995"),
    ("pm_card_chargeDeclinedExpiredCard", "visa", "0069"),
    ("pm_card_authenticationRequired", "visa", "3184"),
];

/// The card (Stripe's 4000 0027 6000 3184) whose every charge waits for the cardholder to
/// authenticate: the PaymentIntent answers 200 with `requires_action`.
pub const AUTHENTICATION_REQUIRED_LAST4: &str = "3184";

/// Cards whose charges are declined, by last four digits: `(last four, code, decline_code,
/// message)`, in Stripe's words.
pub const CHARGE_DECLINES: [(&str, &str, &str, &str); 4] = [
    (
        "0002",
        "card_declined",
        "generic_decline",
        "Your card was declined.",
    ),
    (
        "0341",
        "card_declined",
        "generic_decline",
        "Your card was declined.",
    ),
    (
        "9995",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    (
        "0069",
        "expired_card",
        "expired_card",
        "Your card has expired.",
    ),
];

/// A running fake Stripe. Dropping it stops the server.
pub struct FakeStripe {
    server: Server,
    state: Arc<StripeState>,
    log: RequestLog,
}

/// A webhook delivery: POST `body` with `Stripe-Signature: signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeDelivery {
    pub event_id: String,
    pub body: String,
    pub signature: String,
}

struct StripeState {
    secret_key: String,
    webhook_secret: String,
    data: Mutex<StripeData>,
}

#[derive(Default)]
struct StripeData {
    customers: HashMap<String, Value>,
    setup_intents: HashMap<String, Value>,
    payment_methods: HashMap<String, Value>,
    /// In creation order, declined ones included.
    payment_intents: Vec<Value>,
    /// In creation order.
    refunds: Vec<Value>,
    /// Idempotency key → (request body, response), as Stripe replays a retried request.
    idempotent: HashMap<String, (String, (StatusCode, Value))>,
}

impl FakeStripe {
    /// Serves a fake Stripe on `127.0.0.1` with a fresh secret key and webhook secret.
    pub async fn start() -> Self {
        let state = Arc::new(StripeState {
            secret_key: random_id("sk_test_", 24),
            webhook_secret: random_id("whsec_", 32),
            data: Mutex::default(),
        });
        let log = RequestLog::default();
        let router = Router::new()
            .route("/v1/customers", post(create_customer))
            .route("/v1/setup_intents", post(create_setup_intent))
            .route("/v1/payment_methods/{id}", get(retrieve_payment_method))
            .route("/v1/payment_intents", post(create_payment_intent))
            .route("/v1/refunds", post(create_refund))
            .fallback(unknown_route)
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .with_state(state.clone())
            .layer(middleware::from_fn_with_state(log.clone(), record));
        let (listener, addr) = Server::bind().await;
        Self {
            server: Server::serve(listener, addr, router),
            state,
            log,
        }
    }

    /// Where to point a [`crate::StripeClient`].
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn secret_key(&self) -> &str {
        &self.state.secret_key
    }

    /// The endpoint secret (`whsec_…`) this fake signs webhooks with.
    pub fn webhook_secret(&self) -> &str {
        &self.state.webhook_secret
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().expect("request log lock").clone()
    }

    /// Registers a card payment method, as if the customer had entered it in Stripe.js.
    pub fn add_card(
        &self,
        pm_id: &str,
        customer: &str,
        brand: &str,
        last4: &str,
        exp_month: u32,
        exp_year: i32,
    ) {
        let method = json!({
            "id": pm_id,
            "object": "payment_method",
            "type": "card",
            "customer": customer,
            "card": {
                "brand": brand,
                "last4": last4,
                "exp_month": exp_month,
                "exp_year": exp_year,
                "funding": "credit",
                "country": "US",
            },
            "billing_details": {},
            "metadata": {},
            "created": provider_now().timestamp(),
            "livemode": false,
        });
        self.state
            .data()
            .payment_methods
            .insert(pm_id.to_owned(), method);
    }

    /// Every payment intent created so far, declined ones included, in order.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.state.data().payment_intents.clone()
    }

    /// Every refund created so far, in order.
    pub fn refunds(&self) -> Vec<Value> {
        self.state.data().refunds.clone()
    }

    /// The setup intent as Stripe would return it now, if it exists.
    pub fn setup_intent(&self, id: &str) -> Option<Value> {
        self.state.data().setup_intents.get(id).cloned()
    }

    /// Completes setup intent `setup_intent_id` with payment method `pm_id` (see
    /// [`Self::add_card`]) and returns the signed `setup_intent.succeeded` delivery Stripe would
    /// send; `None` when either is unknown.
    pub fn succeed_setup_intent(
        &self,
        setup_intent_id: &str,
        pm_id: &str,
    ) -> Option<StripeDelivery> {
        let object = {
            let mut data = self.state.data();
            let customer = data.setup_intents.get(setup_intent_id)?["customer"].clone();
            let method = data.payment_methods.get_mut(pm_id)?;
            // Confirming a setup intent attaches the method to the intent's customer.
            method["customer"] = customer;
            let intent = data.setup_intents.get_mut(setup_intent_id)?;
            intent["status"] = json!("succeeded");
            intent["payment_method"] = json!(pm_id);
            intent.clone()
        };
        Some(self.event_delivery(SETUP_INTENT_SUCCEEDED, object, provider_now().timestamp()))
    }

    /// A signed delivery of an event of `event_type` about `object`, signed at `timestamp`
    /// (unix seconds; pass an old one to test replay protection).
    pub fn event_delivery(
        &self,
        event_type: &str,
        object: Value,
        timestamp: i64,
    ) -> StripeDelivery {
        let event_id = random_id("evt_", 24);
        let body = json!({
            "id": event_id,
            "object": "event",
            "api_version": crate::stripe::API_VERSION,
            "created": timestamp,
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": event_type,
            "data": {"object": object},
        })
        .to_string();
        self.sign(event_id, body, timestamp)
    }

    /// Signs an arbitrary body as this fake's endpoint would.
    pub fn sign(&self, event_id: String, body: String, timestamp: i64) -> StripeDelivery {
        let signature =
            stripe_webhook::sign(&self.state.webhook_secret, timestamp, body.as_bytes());
        StripeDelivery {
            event_id,
            body,
            signature,
        }
    }
}

impl StripeState {
    fn data(&self) -> MutexGuard<'_, StripeData> {
        self.data.lock().expect("fake stripe state lock")
    }
}

fn stripe_error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> (StatusCode, Value) {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    (status, json!({"error": error}))
}

async fn authenticate(
    State(state): State<Arc<StripeState>>,
    request: Request,
    next: Next,
) -> Response {
    let expected = format!("Bearer {}", state.secret_key);
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match presented {
        Some(value) if value == expected => next.run(request).await,
        Some(_) => reply(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "Invalid API Key provided.",
            None,
        )),
        None => reply(stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            None,
            "You did not provide an API key. Provide it as a Bearer token in the Authorization header.",
            None,
        )),
    }
}

fn reply((status, body): (StatusCode, Value)) -> Response {
    (status, Json(body)).into_response()
}

async fn unknown_route(request: Request) -> Response {
    reply(stripe_error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        &format!(
            "Unrecognized request URL ({} {}).",
            request.method(),
            request.uri().path()
        ),
        None,
    ))
}

/// Parses a form body after checking it is one, and that it names only `allowed` parameters
/// (`metadata[...]` is always allowed), as Stripe does.
fn parse_form(
    headers: &HeaderMap,
    body: &Bytes,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, (StatusCode, Value)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(FORM_CONTENT_TYPE) {
        return Err(stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "Invalid request: the body must be application/x-www-form-urlencoded.",
            None,
        ));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    for (key, _) in &pairs {
        let is_metadata = key.starts_with("metadata[") && key.ends_with(']');
        if !is_metadata && !allowed.contains(&key.as_str()) {
            return Err(stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_unknown"),
                &format!("Received unknown parameter: {key}"),
                Some(key),
            ));
        }
    }
    Ok(pairs)
}

fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn metadata(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            let inner = k.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((inner.to_owned(), v.clone()))
        })
        .collect()
}

/// Runs `create` once per idempotency key: a retry with the same body gets the first answer,
/// the same key with another body is refused, as Stripe does.
fn idempotent(
    state: &StripeState,
    headers: &HeaderMap,
    body: &Bytes,
    create: impl FnOnce(&mut StripeData) -> (StatusCode, Value),
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = String::from_utf8_lossy(body).into_owned();
    let mut data = state.data();
    if let Some(key) = &key {
        if let Some((first_body, response)) = data.idempotent.get(key) {
            if *first_body == body {
                return reply(response.clone());
            }
            return reply(stripe_error(
                StatusCode::BAD_REQUEST,
                "idempotency_error",
                None,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                None,
            ));
        }
    }
    let response = create(&mut data);
    if let Some(key) = key {
        data.idempotent.insert(key, (body, response.clone()));
    }
    reply(response)
}

async fn create_customer(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = match parse_form(&headers, &body, &["email", "name", "description", "phone"]) {
        Ok(pairs) => pairs,
        Err(error) => return reply(error),
    };
    idempotent(&state, &headers, &body, |data| {
        let id = random_id("cus_", 14);
        let customer = json!({
            "id": id,
            "object": "customer",
            "email": value(&pairs, "email"),
            "name": value(&pairs, "name"),
            "description": value(&pairs, "description"),
            "metadata": metadata(&pairs),
            "created": provider_now().timestamp(),
            "livemode": false,
        });
        data.customers.insert(id, customer.clone());
        (StatusCode::OK, customer)
    })
}

async fn create_setup_intent(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = ["customer", "usage", "payment_method_types[]", "description"];
    let pairs = match parse_form(&headers, &body, &allowed) {
        Ok(pairs) => pairs,
        Err(error) => return reply(error),
    };
    let usage = value(&pairs, "usage").unwrap_or("off_session");
    if !matches!(usage, "off_session" | "on_session") {
        return reply(stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_invalid_string"),
            &format!("Invalid usage: must be one of off_session or on_session, got {usage}"),
            Some("usage"),
        ));
    }
    let customer = value(&pairs, "customer").map(str::to_owned);
    let method_types: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "payment_method_types[]")
        .map(|(_, v)| v.as_str())
        .collect();
    let method_types = if method_types.is_empty() {
        vec!["card"]
    } else {
        method_types
    };
    idempotent(&state, &headers, &body, |data| {
        if let Some(customer) = &customer {
            if !data.customers.contains_key(customer) {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such customer: '{customer}'"),
                    Some("customer"),
                );
            }
        }
        let id = random_id("seti_", 24);
        let intent = json!({
            "id": id,
            "object": "setup_intent",
            "client_secret": format!("{id}_secret_{}", random_id("", 24)),
            "customer": customer,
            "payment_method": null,
            "payment_method_types": method_types,
            "status": "requires_payment_method",
            "usage": usage,
            "metadata": metadata(&pairs),
            "created": provider_now().timestamp(),
            "livemode": false,
        });
        data.setup_intents.insert(id, intent.clone());
        (StatusCode::OK, intent)
    })
}

async fn retrieve_payment_method(
    State(state): State<Arc<StripeState>>,
    Path(id): Path<String>,
) -> Response {
    match state.data().payment_methods.get(&id) {
        Some(method) => reply((StatusCode::OK, method.clone())),
        None => reply(stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("resource_missing"),
            &format!("No such PaymentMethod: '{id}'"),
            Some("payment_method"),
        )),
    }
}

fn missing_parameter(param: &str) -> (StatusCode, Value) {
    stripe_error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some("parameter_missing"),
        &format!("Missing required param: {param}."),
        Some(param),
    )
}

/// A positive integer amount (smallest currency unit), as Stripe checks `amount`.
fn positive_amount(raw: &str) -> Result<i64, (StatusCode, Value)> {
    match raw.parse::<i64>() {
        Ok(amount) if amount >= 1 => Ok(amount),
        Ok(_) => Err(stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_invalid_integer"),
            "This value must be greater than or equal to 1.",
            Some("amount"),
        )),
        Err(_) => Err(stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("parameter_invalid_integer"),
            &format!("Invalid integer: {raw}"),
            Some("amount"),
        )),
    }
}

/// The card's last four digits and the customer it is attached to, for a registered payment
/// method or one of Stripe's test PaymentMethods; `None` when Stripe would not know it.
fn card_of(data: &StripeData, pm_id: &str) -> Option<(String, Option<String>)> {
    if let Some(method) = data.payment_methods.get(pm_id) {
        let last4 = method["card"]["last4"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Some((last4, method["customer"].as_str().map(str::to_owned)));
    }
    TEST_PAYMENT_METHODS
        .iter()
        .find(|(id, ..)| *id == pm_id)
        .map(|(_, _, last4)| ((*last4).to_owned(), None))
}

async fn create_payment_intent(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let allowed = [
        "amount",
        "currency",
        "customer",
        "payment_method",
        "confirm",
        "off_session",
        "description",
        "payment_method_types[]",
    ];
    let pairs = match parse_form(&headers, &body, &allowed) {
        Ok(pairs) => pairs,
        Err(error) => return reply(error),
    };
    let amount = match value(&pairs, "amount").map(positive_amount) {
        Some(Ok(amount)) => amount,
        Some(Err(error)) => return reply(error),
        None => return reply(missing_parameter("amount")),
    };
    let currency = match value(&pairs, "currency") {
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            c.to_ascii_lowercase()
        }
        Some(c) => {
            return reply(stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("parameter_invalid_string"),
                &format!("Invalid currency: {c}."),
                Some("currency"),
            ))
        }
        None => return reply(missing_parameter("currency")),
    };
    let confirm = value(&pairs, "confirm") == Some("true");
    if value(&pairs, "off_session") == Some("true") && !confirm {
        return reply(stripe_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "You can only pass `off_session` when `confirm` is true.",
            Some("off_session"),
        ));
    }
    let payment_method = value(&pairs, "payment_method").map(str::to_owned);
    if confirm && payment_method.is_none() {
        return reply(missing_parameter("payment_method"));
    }
    let customer = value(&pairs, "customer").map(str::to_owned);
    let description = value(&pairs, "description").map(str::to_owned);
    idempotent(&state, &headers, &body, |data| {
        if let Some(customer) = &customer {
            if !data.customers.contains_key(customer) {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such customer: '{customer}'"),
                    Some("customer"),
                );
            }
        }
        let mut decline = None;
        let mut needs_authentication = false;
        if let Some(pm_id) = &payment_method {
            let Some((last4, owner)) = card_of(data, pm_id) else {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such PaymentMethod: '{pm_id}'"),
                    Some("payment_method"),
                );
            };
            if owner.is_some() && customer.is_some() && owner != customer {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    None,
                    "The provided PaymentMethod belongs to another Customer.",
                    Some("payment_method"),
                );
            }
            decline = CHARGE_DECLINES.iter().find(|(l, ..)| *l == last4);
            needs_authentication = last4 == AUTHENTICATION_REQUIRED_LAST4;
        }
        let id = random_id("pi_", 24);
        let status = match (confirm, decline) {
            (false, _) if payment_method.is_some() => "requires_confirmation",
            (false, _) => "requires_payment_method",
            (true, Some(_)) => "requires_payment_method",
            (true, None) if needs_authentication => "requires_action",
            (true, None) => "succeeded",
        };
        let charge_id = confirm.then(|| random_id("ch_", 24));
        let mut intent = json!({
            "id": id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": if status == "succeeded" { amount } else { 0 },
            "currency": currency,
            "customer": customer,
            "payment_method": payment_method,
            "description": description,
            "status": status,
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "latest_charge": charge_id,
            "last_payment_error": null,
            "next_action": if status == "requires_action" {
                json!({"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}})
            } else {
                Value::Null
            },
            "metadata": metadata(&pairs),
            "created": provider_now().timestamp(),
            "livemode": false,
        });
        let Some((_, code, decline_code, message)) = decline.filter(|_| confirm) else {
            data.payment_intents.push(intent.clone());
            return (StatusCode::OK, intent);
        };
        let error = json!({
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "charge": charge_id,
            "doc_url": format!("https://stripe.com/docs/error-codes/{code}"),
        });
        intent["last_payment_error"] = error.clone();
        data.payment_intents.push(intent.clone());
        let mut error = error;
        error["payment_intent"] = intent;
        (StatusCode::PAYMENT_REQUIRED, json!({"error": error}))
    })
}

async fn create_refund(
    State(state): State<Arc<StripeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs = match parse_form(&headers, &body, &["payment_intent", "amount", "reason"]) {
        Ok(pairs) => pairs,
        Err(error) => return reply(error),
    };
    let Some(intent_id) = value(&pairs, "payment_intent").map(str::to_owned) else {
        return reply(missing_parameter("payment_intent"));
    };
    let amount = match value(&pairs, "amount").map(positive_amount).transpose() {
        Ok(amount) => amount,
        Err(error) => return reply(error),
    };
    let reason = value(&pairs, "reason").map(str::to_owned);
    idempotent(&state, &headers, &body, |data| {
        let Some(intent) = data
            .payment_intents
            .iter()
            .find(|i| i["id"] == intent_id.as_str())
            .cloned()
        else {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such payment_intent: '{intent_id}'"),
                Some("payment_intent"),
            );
        };
        if intent["status"] != "succeeded" {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("payment_intent_unexpected_state"),
                "This PaymentIntent does not have a successful charge to refund.",
                Some("payment_intent"),
            );
        }
        let charge = intent["latest_charge"].as_str().unwrap_or_default();
        let refunded: i64 = data
            .refunds
            .iter()
            .filter(|r| r["payment_intent"] == intent_id.as_str() && r["status"] == "succeeded")
            .filter_map(|r| r["amount"].as_i64())
            .sum();
        let remaining = intent["amount"].as_i64().unwrap_or_default() - refunded;
        if remaining <= 0 {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("charge_already_refunded"),
                &format!("Charge {charge} has already been refunded."),
                None,
            );
        }
        let amount = amount.unwrap_or(remaining);
        if amount > remaining {
            return stripe_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("amount_too_large"),
                &format!(
                    "Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"
                ),
                Some("amount"),
            );
        }
        let refund = json!({
            "id": random_id("re_", 24),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent_id,
            "charge": charge,
            "reason": reason,
            "status": "succeeded",
            "failure_reason": null,
            "metadata": metadata(&pairs),
            "created": provider_now().timestamp(),
        });
        data.refunds.push(refund.clone());
        (StatusCode::OK, refund)
    })
}
