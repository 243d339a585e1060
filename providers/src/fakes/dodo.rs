//! A fake Dodo Payments API: customers, their payment methods, subscriptions, the
//! update-payment-method link, on-demand subscription charges, payments and refunds, in Dodo's
//! JSON shapes, plus Standard-Webhooks-signed deliveries.
//!
//! Dodo documents its error body (`{"code", "message"}`) but not which code each refusal uses;
//! the codes here are plausible stand-ins, and the client does not depend on them.
//!
//! A charge answers its payment at once, `processing`, as Dodo does; the test settles it with
//! [`FakeDodo::succeed_payment`] or declines it with [`FakeDodo::fail_payment`], each returning
//! the signed webhook Dodo would send. Refunds are made `pending`. Like Dodo, the fake takes no
//! idempotency key: every charge request is a new payment.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, SecondsFormat};

use super::provider_now;
use rand::RngCore;
use serde_json::{json, Value};

use super::recorder::{record, RecordedRequest, RequestLog};
use super::{random_id, Server};
use crate::dodo_webhook::event_types;
use crate::standard_webhooks::{
    StandardWebhookSecret, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// How long Dodo's update-payment-method link stays usable in the fake.
const LINK_LIFETIME_MINUTES: i64 = 60;

/// A running fake Dodo. Dropping it stops the server.
pub struct FakeDodo {
    server: Server,
    state: Arc<DodoState>,
    log: RequestLog,
}

/// A Standard Webhooks delivery: POST `body` with [`DodoDelivery::headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DodoDelivery {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
}

impl DodoDelivery {
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature`, ready to send.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (ID_HEADER, self.id.clone()),
            (TIMESTAMP_HEADER, self.timestamp.to_string()),
            (SIGNATURE_HEADER, self.signature.clone()),
        ]
    }
}

struct DodoState {
    api_key: String,
    business_id: String,
    webhook_secret: StandardWebhookSecret,
    base_url: String,
    data: Mutex<DodoData>,
}

#[derive(Default)]
struct DodoData {
    customers: HashMap<String, Value>,
    /// Customer id → its saved payment methods, in the list endpoint's item shape.
    payment_methods: HashMap<String, Vec<Value>>,
    subscriptions: HashMap<String, Value>,
    /// In creation order, each with its `refunds` left empty (they are joined on reading).
    payments: Vec<Value>,
    /// In creation order.
    refunds: Vec<Value>,
}

impl FakeDodo {
    /// Serves a fake Dodo on `127.0.0.1` with a fresh API key and webhook secret.
    pub async fn start() -> Self {
        let mut key = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut key);
        let (listener, addr) = Server::bind().await;
        let state = Arc::new(DodoState {
            api_key: random_id("", 32),
            business_id: random_id("bus_", 16),
            webhook_secret: StandardWebhookSecret::from_bytes(key.to_vec()),
            base_url: format!("http://{addr}"),
            data: Mutex::default(),
        });
        let log = RequestLog::default();
        let router = Router::new()
            .route("/customers", post(create_customer))
            .route(
                "/customers/{customer_id}/payment-methods",
                get(list_payment_methods),
            )
            .route(
                "/subscriptions/{subscription_id}",
                get(retrieve_subscription),
            )
            .route(
                "/subscriptions/{subscription_id}/update-payment-method",
                post(update_payment_method),
            )
            .route(
                "/subscriptions/{subscription_id}/charge",
                post(charge_subscription),
            )
            .route("/payments", get(list_payments))
            .route("/payments/{payment_id}", get(retrieve_payment))
            .route("/refunds", post(create_refund))
            .fallback(unknown_route)
            .layer(middleware::from_fn_with_state(state.clone(), authenticate))
            .with_state(state.clone())
            .layer(middleware::from_fn_with_state(log.clone(), record));
        Self {
            server: Server::serve(listener, addr, router),
            state,
            log,
        }
    }

    /// Where to point a [`crate::DodoClient`].
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn api_key(&self) -> &str {
        &self.state.api_key
    }

    pub fn business_id(&self) -> &str {
        &self.state.business_id
    }

    /// The signing secret in the `whsec_…` form Dodo's dashboard shows.
    pub fn webhook_secret(&self) -> String {
        self.state.webhook_secret.to_whsec()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().expect("request log lock").clone()
    }

    /// Registers a subscription of `customer_id` (created on the fly if unknown) in `status`
    /// (`active`, `on_hold`, `cancelled`, …), as if bought through a Dodo checkout.
    pub fn add_subscription(&self, subscription_id: &str, customer_id: &str, status: &str) {
        let mut data = self.state.data();
        let customer = data
            .customers
            .entry(customer_id.to_owned())
            .or_insert_with(|| {
                customer_json(
                    customer_id,
                    &self.state.business_id,
                    &format!("{customer_id}@example.com"),
                    customer_id,
                    BTreeMap::new(),
                )
            })
            .clone();
        let now = provider_now();
        let subscription = json!({
            "subscription_id": subscription_id,
            "status": status,
            "customer": {
                "customer_id": customer["customer_id"],
                "email": customer["email"],
                "name": customer["name"],
                "metadata": {},
                "phone_number": null,
            },
            "payment_method_id": null,
            "metadata": {},
            "product_id": "pdt_fake",
            "quantity": 1,
            "currency": "USD",
            "recurring_pre_tax_amount": 1000,
            "tax_inclusive": false,
            "on_demand": false,
            "cancel_at_next_billing_date": false,
            "created_at": rfc3339(now),
            "previous_billing_date": rfc3339(now),
            "next_billing_date": rfc3339(now + Duration::days(30)),
        });
        data.subscriptions
            .insert(subscription_id.to_owned(), subscription);
    }

    /// The subscription as Dodo would return it now, if it exists.
    pub fn subscription(&self, subscription_id: &str) -> Option<Value> {
        self.state
            .data()
            .subscriptions
            .get(subscription_id)
            .cloned()
    }

    /// Saves a card for `customer_id`, as if entered on a Dodo payment page.
    pub fn add_card(
        &self,
        payment_method_id: &str,
        customer_id: &str,
        network: &str,
        last4: &str,
        exp_month: u32,
        exp_year: i32,
    ) {
        let method = json!({
            "payment_method_id": payment_method_id,
            "payment_method": "card",
            "payment_method_type": null,
            "card": {
                "card_network": network,
                "card_type": "CREDIT",
                "card_issuing_country": "US",
                "last4_digits": last4,
                "expiry_month": format!("{exp_month:02}"),
                "expiry_year": exp_year.to_string(),
            },
            "last_used_at": null,
            "recurring_enabled": true,
        });
        self.state
            .data()
            .payment_methods
            .entry(customer_id.to_owned())
            .or_default()
            .push(method);
    }

    /// Every payment so far, in order, as `GET /payments/{payment_id}` would answer it.
    pub fn payments(&self) -> Vec<Value> {
        let data = self.state.data();
        data.payments
            .iter()
            .map(|p| with_refunds(&data, p.clone()))
            .collect()
    }

    /// Every refund so far, in order.
    pub fn refunds(&self) -> Vec<Value> {
        self.state.data().refunds.clone()
    }

    /// Settles payment `payment_id` as paid and returns the signed `payment.succeeded` delivery
    /// Dodo would send; `None` when the payment is unknown.
    pub fn succeed_payment(&self, payment_id: &str) -> Option<DodoDelivery> {
        self.settle_payment(payment_id, "succeeded", None)
    }

    /// Settles payment `payment_id` as declined with Dodo's `error_code` and `error_message`
    /// and returns the signed `payment.failed` delivery; `None` when the payment is unknown.
    pub fn fail_payment(
        &self,
        payment_id: &str,
        error_code: &str,
        error_message: &str,
    ) -> Option<DodoDelivery> {
        self.settle_payment(payment_id, "failed", Some((error_code, error_message)))
    }

    fn settle_payment(
        &self,
        payment_id: &str,
        status: &str,
        error: Option<(&str, &str)>,
    ) -> Option<DodoDelivery> {
        let payment = {
            let mut data = self.state.data();
            let payment = data
                .payments
                .iter_mut()
                .find(|p| p["payment_id"] == payment_id)?;
            payment["status"] = json!(status);
            payment["error_code"] = json!(error.map(|(code, _)| code));
            payment["error_message"] = json!(error.map(|(_, message)| message));
            let payment = payment.clone();
            with_refunds(&data, payment)
        };
        let event_type = if error.is_some() {
            event_types::PAYMENT_FAILED
        } else {
            event_types::PAYMENT_SUCCEEDED
        };
        Some(self.delivery(
            event_type,
            with_payload_type(payment, "Payment"),
            provider_now().timestamp(),
        ))
    }

    /// Plays the customer completing the update-payment-method link of `subscription_id` with a
    /// new card: the card is saved, the subscription is charged to it from now on, and the
    /// signed `subscription.updated` delivery Dodo would send is returned. `None` when the
    /// subscription is unknown.
    pub fn complete_payment_method_update(
        &self,
        subscription_id: &str,
        payment_method_id: &str,
        network: &str,
        last4: &str,
        exp_month: u32,
        exp_year: i32,
    ) -> Option<DodoDelivery> {
        let customer_id = self.subscription(subscription_id)?["customer"]["customer_id"]
            .as_str()?
            .to_owned();
        self.add_card(
            payment_method_id,
            &customer_id,
            network,
            last4,
            exp_month,
            exp_year,
        );
        let subscription = {
            let mut data = self.state.data();
            let subscription = data.subscriptions.get_mut(subscription_id)?;
            subscription["payment_method_id"] = json!(payment_method_id);
            subscription.clone()
        };
        Some(self.delivery(
            event_types::SUBSCRIPTION_UPDATED,
            with_payload_type(subscription, "Subscription"),
            provider_now().timestamp(),
        ))
    }

    /// A signed delivery of an event of `event_type` about `data`, sent at `timestamp` (unix
    /// seconds; pass an old one to test replay protection).
    pub fn delivery(&self, event_type: &str, data: Value, timestamp: i64) -> DodoDelivery {
        let body = json!({
            "business_id": self.state.business_id,
            "type": event_type,
            "timestamp": rfc3339(provider_now()),
            "data": data,
        })
        .to_string();
        self.sign(random_id("msg_", 27), body, timestamp)
    }

    /// Signs an arbitrary body as Dodo would deliver it.
    pub fn sign(&self, id: String, body: String, timestamp: i64) -> DodoDelivery {
        let signature = self
            .state
            .webhook_secret
            .sign(&id, timestamp, body.as_bytes());
        DodoDelivery {
            id,
            timestamp,
            signature,
            body,
        }
    }
}

impl DodoState {
    fn data(&self) -> MutexGuard<'_, DodoData> {
        self.data.lock().expect("fake dodo state lock")
    }
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Webhook payloads name their object's kind; API responses do not.
fn with_payload_type(mut object: Value, payload_type: &str) -> Value {
    object["payload_type"] = json!(payload_type);
    object
}

fn customer_json(
    customer_id: &str,
    business_id: &str,
    email: &str,
    name: &str,
    metadata: BTreeMap<String, String>,
) -> Value {
    json!({
        "customer_id": customer_id,
        "business_id": business_id,
        "email": email,
        "name": name,
        "phone_number": null,
        "metadata": metadata,
        "created_at": rfc3339(provider_now()),
    })
}

/// A refusal in Dodo's error shape, `{"code", "message"}`.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code, "message": self.message});
        (self.status, Json(body)).into_response()
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code,
        message: message.into(),
    }
}

async fn authenticate(
    State(state): State<Arc<DodoState>>,
    request: Request,
    next: Next,
) -> Response {
    let expected = format!("Bearer {}", state.api_key);
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if authorized {
        next.run(request).await
    } else {
        refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Invalid or missing API key",
        )
        .into_response()
    }
}

async fn unknown_route() -> Refusal {
    refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "Route not found")
}

/// The body as a JSON object, after checking it was sent as one.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<serde_json::Map<String, Value>, Refusal> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST_BODY",
            "Expected an application/json body",
        ));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            "The body is not a JSON object",
        )),
    }
}

fn required_str<'a>(
    body: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a str, Refusal> {
    body.get(field).and_then(Value::as_str).ok_or_else(|| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            format!("missing field `{field}`"),
        )
    })
}

async fn create_customer(
    State(state): State<Arc<DodoState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let body = json_body(&headers, &body)?;
    let email = required_str(&body, "email")?;
    let name = required_str(&body, "name")?;
    let metadata: BTreeMap<String, String> = body
        .get("metadata")
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    let customer_id = random_id("cus_", 21);
    let customer = customer_json(&customer_id, &state.business_id, email, name, metadata);
    state.data().customers.insert(customer_id, customer.clone());
    Ok((StatusCode::OK, Json(customer)).into_response())
}

async fn list_payment_methods(
    State(state): State<Arc<DodoState>>,
    Path(customer_id): Path<String>,
) -> Result<Response, Refusal> {
    let data = state.data();
    if !data.customers.contains_key(&customer_id) {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Customer not found",
        ));
    }
    let items = data
        .payment_methods
        .get(&customer_id)
        .cloned()
        .unwrap_or_default();
    Ok((StatusCode::OK, Json(json!({"items": items}))).into_response())
}

async fn retrieve_subscription(
    State(state): State<Arc<DodoState>>,
    Path(subscription_id): Path<String>,
) -> Result<Response, Refusal> {
    match state.data().subscriptions.get(&subscription_id) {
        Some(subscription) => Ok((StatusCode::OK, Json(subscription.clone())).into_response()),
        None => Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Subscription not found",
        )),
    }
}

async fn update_payment_method(
    State(state): State<Arc<DodoState>>,
    Path(subscription_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let body = json_body(&headers, &body)?;
    let kind = required_str(&body, "type")?;
    let mut data = state.data();
    let Some(subscription) = data.subscriptions.get(&subscription_id) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Subscription not found",
        ));
    };
    let status = subscription["status"].as_str().unwrap_or_default();
    if !matches!(status, "active" | "on_hold") {
        return Err(refuse(
            StatusCode::CONFLICT,
            "INVALID_SUBSCRIPTION_STATUS",
            format!("Cannot update the payment method of a {status} subscription"),
        ));
    }
    let customer_id = subscription["customer"]["customer_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    match kind {
        "new" => {
            let payment_id = random_id("pay_", 21);
            let link = json!({
                "payment_id": payment_id,
                "payment_link": format!("{}/checkout/{payment_id}", state.base_url),
                "client_secret": format!("{payment_id}_secret_{}", random_id("", 20)),
                "expires_on": rfc3339(provider_now() + Duration::minutes(LINK_LIFETIME_MINUTES)),
            });
            Ok((StatusCode::OK, Json(link)).into_response())
        }
        "existing" => {
            let payment_method_id = required_str(&body, "payment_method_id")?.to_owned();
            let owned = data
                .payment_methods
                .get(&customer_id)
                .is_some_and(|methods| {
                    methods
                        .iter()
                        .any(|m| m["payment_method_id"] == payment_method_id.as_str())
                });
            if !owned {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "Payment method not found for this customer",
                ));
            }
            if let Some(subscription) = data.subscriptions.get_mut(&subscription_id) {
                subscription["payment_method_id"] = json!(payment_method_id);
            }
            // An active subscription switches at once: nothing to pay, so no link.
            let link = json!({
                "payment_id": null, "payment_link": null, "client_secret": null, "expires_on": null
            });
            Ok((StatusCode::OK, Json(link)).into_response())
        }
        other => Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            format!("unknown variant `{other}`, expected `new` or `existing`"),
        )),
    }
}

/// The payment as the API answers it, with its refunds.
fn with_refunds(data: &DodoData, mut payment: Value) -> Value {
    let refunds: Vec<Value> = data
        .refunds
        .iter()
        .filter(|r| r["payment_id"] == payment["payment_id"])
        .cloned()
        .collect();
    payment["refunds"] = json!(refunds);
    payment
}

/// Refuses any field but `allowed`, as a strict schema would.
fn only_fields(body: &serde_json::Map<String, Value>, allowed: &[&str]) -> Result<(), Refusal> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            format!("unknown field `{unknown}`"),
        )),
        None => Ok(()),
    }
}

/// An optional `metadata` object of strings.
fn metadata_field(body: &serde_json::Map<String, Value>) -> Result<Option<Value>, Refusal> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) if map.values().all(Value::is_string) => {
            Ok(Some(Value::Object(map.clone())))
        }
        Some(_) => Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            "metadata must be an object of strings",
        )),
    }
}

/// A non-negative int32 amount, as Dodo's schema types prices.
fn amount_field(value: &Value, field: &str) -> Result<i64, Refusal> {
    value
        .as_i64()
        .filter(|a| (0..=i64::from(i32::MAX)).contains(a))
        .ok_or_else(|| {
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST_BODY",
                format!("`{field}` must be a non-negative 32-bit integer"),
            )
        })
}

async fn charge_subscription(
    State(state): State<Arc<DodoState>>,
    Path(subscription_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let body = json_body(&headers, &body)?;
    only_fields(
        &body,
        &[
            "product_price",
            "product_currency",
            "product_description",
            "metadata",
            "adaptive_currency_fees_inclusive",
            "customer_balance_config",
        ],
    )?;
    let price = body.get("product_price").ok_or_else(|| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_REQUEST_BODY",
            "missing field `product_price`",
        )
    })?;
    let price = amount_field(price, "product_price")?;
    let currency = match body.get("product_currency") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => {
            Some(c.clone())
        }
        Some(other) => {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST_BODY",
                format!("unknown variant {other}, expected an ISO 4217 currency code"),
            ))
        }
    };
    let metadata = metadata_field(&body)?;
    let mut data = state.data();
    let Some(subscription) = data.subscriptions.get(&subscription_id).cloned() else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Subscription not found",
        ));
    };
    let status = subscription["status"].as_str().unwrap_or_default();
    if status != "active" {
        return Err(refuse(
            StatusCode::CONFLICT,
            "INVALID_SUBSCRIPTION_STATUS",
            format!("Cannot charge a {status} subscription"),
        ));
    }
    let payment_id = random_id("pay_", 21);
    let payment = json!({
        "payment_id": payment_id,
        "business_id": state.business_id,
        "brand_id": state.business_id,
        "subscription_id": subscription_id,
        "customer": subscription["customer"],
        "total_amount": price,
        "currency": currency.map_or_else(|| subscription["currency"].clone(), Value::from),
        "status": "processing",
        "payment_method": "card",
        "payment_method_type": null,
        "card_network": null,
        "card_last_four": null,
        "card_type": null,
        "error_code": null,
        "error_message": null,
        "metadata": metadata.unwrap_or_else(|| subscription["metadata"].clone()),
        "product_cart": null,
        "digital_products_delivered": false,
        "created_at": rfc3339(provider_now()),
    });
    data.payments.push(payment);
    Ok((StatusCode::OK, Json(json!({"payment_id": payment_id}))).into_response())
}

async fn list_payments(
    State(state): State<Arc<DodoState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let number = |name: &str, default: usize| -> Result<usize, Refusal> {
        query.get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "INVALID_QUERY",
                    format!("`{name}` must be a non-negative integer"),
                )
            })
        })
    };
    let page_size = number("page_size", 10)?;
    let page_number = number("page_number", 0)?;
    if page_size > 100 {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_QUERY",
            "`page_size` is at most 100",
        ));
    }
    let matches = |payment: &Value, field: &str, pointer: &str| {
        query
            .get(field)
            .is_none_or(|wanted| payment.pointer(pointer) == Some(&json!(wanted)))
    };
    let data = state.data();
    let items: Vec<Value> = data
        .payments
        .iter()
        .rev()
        .filter(|p| matches(p, "subscription_id", "/subscription_id"))
        .filter(|p| matches(p, "customer_id", "/customer/customer_id"))
        .filter(|p| matches(p, "status", "/status"))
        .skip(page_size * page_number)
        .take(page_size)
        .map(|p| {
            // List items carry no refunds or cart.
            let mut item = p.clone();
            if let Some(object) = item.as_object_mut() {
                object.remove("product_cart");
                object.remove("refunds");
            }
            item
        })
        .collect();
    Ok((StatusCode::OK, Json(json!({"items": items}))).into_response())
}

async fn retrieve_payment(
    State(state): State<Arc<DodoState>>,
    Path(payment_id): Path<String>,
) -> Result<Response, Refusal> {
    let data = state.data();
    match data.payments.iter().find(|p| p["payment_id"] == payment_id) {
        Some(payment) => {
            Ok((StatusCode::OK, Json(with_refunds(&data, payment.clone()))).into_response())
        }
        None => Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Payment not found",
        )),
    }
}

async fn create_refund(
    State(state): State<Arc<DodoState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let body = json_body(&headers, &body)?;
    only_fields(&body, &["payment_id", "items", "reason", "metadata"])?;
    let payment_id = required_str(&body, "payment_id")?.to_owned();
    let reason = body
        .get("reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let metadata = metadata_field(&body)?.unwrap_or_else(|| json!({}));
    let items: Option<Vec<(String, Option<i64>)>> = match body.get("items") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    let item_id = item["item_id"].as_str().ok_or_else(|| {
                        refuse(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "INVALID_REQUEST_BODY",
                            "missing field `item_id`",
                        )
                    })?;
                    let amount = match item.get("amount") {
                        None | Some(Value::Null) => None,
                        Some(amount) => Some(amount_field(amount, "amount")?),
                    };
                    Ok((item_id.to_owned(), amount))
                })
                .collect::<Result<_, Refusal>>()?,
        ),
        Some(_) => {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_REQUEST_BODY",
                "`items` must be an array",
            ))
        }
    };

    let mut data = state.data();
    let Some(payment) = data
        .payments
        .iter()
        .find(|p| p["payment_id"] == payment_id.as_str())
        .cloned()
    else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Payment not found",
        ));
    };
    let status = payment["status"].as_str().unwrap_or_default();
    if status != "succeeded" {
        return Err(refuse(
            StatusCode::CONFLICT,
            "INVALID_PAYMENT_STATUS",
            format!("Cannot refund a {status} payment"),
        ));
    }
    let total = payment["total_amount"].as_i64().unwrap_or_default();
    let refunded: i64 = data
        .refunds
        .iter()
        .filter(|r| r["payment_id"] == payment_id.as_str() && r["status"] != "failed")
        .filter_map(|r| r["amount"].as_i64())
        .sum();
    let remaining = total - refunded;
    // A payment's lines: its cart, or for a subscription's payment the subscription's product.
    let products: Vec<String> = match payment["product_cart"].as_array() {
        Some(cart) => cart
            .iter()
            .filter_map(|line| line["product_id"].as_str().map(str::to_owned))
            .collect(),
        None => payment["subscription_id"]
            .as_str()
            .and_then(|id| data.subscriptions.get(id))
            .and_then(|s| s["product_id"].as_str())
            .map(str::to_owned)
            .into_iter()
            .collect(),
    };
    let amount = match &items {
        None => remaining,
        Some(items) => {
            let mut sum = 0;
            for (item_id, amount) in items {
                if !products.contains(item_id) {
                    return Err(refuse(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "INVALID_REQUEST_BODY",
                        format!("Item {item_id} is not part of payment {payment_id}"),
                    ));
                }
                sum += amount.unwrap_or(remaining);
            }
            sum
        }
    };
    if amount <= 0 || amount > remaining {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "REFUND_AMOUNT_EXCEEDED",
            format!("Cannot refund {amount}: {remaining} of the payment is left to refund"),
        ));
    }
    let refund = json!({
        "refund_id": random_id("ref_", 21),
        "payment_id": payment_id,
        "business_id": state.business_id,
        "customer": payment["customer"],
        "is_partial": amount < total,
        "amount": amount,
        "currency": payment["currency"],
        "reason": reason,
        "status": "pending",
        "metadata": metadata,
        "created_at": rfc3339(provider_now()),
    });
    data.refunds.push(refund.clone());
    Ok((StatusCode::OK, Json(refund)).into_response())
}
