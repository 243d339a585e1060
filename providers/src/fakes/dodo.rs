//! A fake Dodo Payments API: customers, their payment methods, subscriptions and the
//! update-payment-method link, in Dodo's JSON shapes, plus Standard-Webhooks-signed deliveries.
//!
//! Dodo documents its error body (`{"code", "message"}`) but not which code each refusal uses;
//! the codes here are plausible stand-ins, and the client does not depend on them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, SecondsFormat, Utc};
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
        let now = Utc::now();
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
            Utc::now().timestamp(),
        ))
    }

    /// A signed delivery of an event of `event_type` about `data`, sent at `timestamp` (unix
    /// seconds; pass an old one to test replay protection).
    pub fn delivery(&self, event_type: &str, data: Value, timestamp: i64) -> DodoDelivery {
        let body = json!({
            "business_id": self.state.business_id,
            "type": event_type,
            "timestamp": rfc3339(Utc::now()),
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

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
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
        "created_at": rfc3339(Utc::now()),
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
                "expires_on": rfc3339(Utc::now() + Duration::minutes(LINK_LIFETIME_MINUTES)),
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
