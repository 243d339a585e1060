//! A small Dodo Payments API client: what billstream needs to let a customer add or replace the
//! payment method (mandate) behind an existing Dodo subscription, to charge that mandate on
//! demand, and to refund such a charge.
//!
//! Dodo takes JSON bodies, authenticates with the API key as a Bearer token, and answers errors
//! as `{"code": "...", "message": "..."}`. Test mode and live mode are separate hosts.
//!
//! Endpoints, from Dodo's API reference:
//! - `POST /customers` `{email, name, phone_number?, metadata?}` → customer
//!   (<https://docs.dodopayments.com/api-reference/customers/create-customer>)
//! - `GET /customers/{customer_id}/payment-methods` → `{items: [...]}`
//!   (<https://docs.dodopayments.com/api-reference/customers/get-customer-payment-methods>)
//! - `GET /subscriptions/{subscription_id}` → subscription
//!   (<https://docs.dodopayments.com/api-reference/subscriptions/get-subscriptions>)
//! - `POST /subscriptions/{subscription_id}/update-payment-method`
//!   `{"type": "new", "return_url"?}` or `{"type": "existing", "payment_method_id"}` →
//!   `{payment_id, payment_link, client_secret, expires_on}`, every field nullable; works for
//!   `active` and `on_hold` subscriptions
//!   (<https://docs.dodopayments.com/api-reference/subscriptions/update-payment-method>)
//! - `POST /subscriptions/{subscription_id}/charge` `{product_price, product_currency?,
//!   product_description?, metadata?}` → `{payment_id}`; the outcome arrives by webhook
//!   (`payment.succeeded` / `payment.failed`)
//!   (<https://docs.dodopayments.com/api-reference/subscriptions/create-charge>)
//! - `GET /payments?subscription_id=&page_size=` → `{items: [...]}` and
//!   `GET /payments/{payment_id}` → payment, with its `refunds` and `product_cart`
//!   (<https://docs.dodopayments.com/api-reference/payments/get-payments>)
//! - `POST /refunds` `{payment_id, items?: [{item_id, amount?}], reason?, metadata?}` → refund;
//!   Dodo takes no amount for the whole payment: a partial refund names the item it refunds
//!   (<https://docs.dodopayments.com/api-reference/refunds/post-refunds>)
//! - error body and codes (<https://docs.dodopayments.com/api-reference/error-codes>)
//!
//! Dodo documents no idempotency key: callers that must not repeat a charge or refund look
//! for their own earlier one first (see [`crate::gateway::DodoGateway`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const LIVE_BASE_URL: &str = "https://live.dodopayments.com";
pub const TEST_BASE_URL: &str = "https://test.dodopayments.com";
pub const DEFAULT_BASE_URL: &str = LIVE_BASE_URL;

/// Keeps a slow provider from holding a request (and a database transaction) open forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An error body is kept for diagnosis, but not without bound.
const MAX_KEPT_BODY: usize = 1024;

#[derive(Clone)]
pub struct DodoClient {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl std::fmt::Debug for DodoClient {
    // The API key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DodoClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum DodoError {
    /// Dodo understood the request and refused it.
    #[error("dodo refused the request ({status}): {message}")]
    Api {
        status: u16,
        /// Dodo's error code, e.g. `NOT_FOUND`, `SUBSCRIPTION_INACTIVE`.
        code: Option<String>,
        message: String,
    },
    /// Dodo could not be reached, or the connection broke.
    #[error("dodo could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// Something answered, but not in Dodo's documented shape (a proxy page, a wrong base URL).
    #[error("dodo answered {status} with an unexpected body: {body}")]
    UnexpectedResponse { status: u16, body: String },
}

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoCustomer {
    pub customer_id: String,
    pub business_id: String,
    pub email: String,
    pub name: String,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
}

/// The customer as embedded in subscriptions and payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoCustomerRef {
    pub customer_id: String,
    pub email: String,
    pub name: String,
}

/// The fields of Dodo's subscription object that billstream reads; the rest are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoSubscription {
    pub subscription_id: String,
    /// `pending`, `active`, `on_hold`, `cancelled`, `failed` or `expired`.
    pub status: String,
    pub customer: DodoCustomerRef,
    /// The saved payment method renewals are charged to; absent from older payloads.
    #[serde(default)]
    pub payment_method_id: Option<String>,
    /// The product the subscription is for; a partial refund of its payments names it.
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// How to change a subscription's payment method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaymentMethodUpdate {
    /// The customer enters a new method on Dodo's hosted page; Dodo answers with its link.
    New {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        return_url: Option<String>,
    },
    /// Switch to one of the customer's saved methods, without the customer.
    Existing { payment_method_id: String },
}

/// Dodo's answer to an update: for `new`, the hosted link the customer must visit. Every field
/// is nullable in Dodo's schema (an `existing` switch on an active subscription needs no link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodUpdateLink {
    #[serde(default)]
    pub payment_id: Option<String>,
    #[serde(default)]
    pub payment_link: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub expires_on: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoPaymentMethod {
    pub payment_method_id: String,
    /// `card`, `upi_collect`, …
    pub payment_method: String,
    #[serde(default)]
    pub payment_method_type: Option<String>,
    #[serde(default)]
    pub card: Option<DodoCard>,
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recurring_enabled: Option<bool>,
}

/// Dodo's card summary; every field is optional and the expiry comes as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoCard {
    #[serde(default)]
    pub card_network: Option<String>,
    #[serde(default)]
    pub card_type: Option<String>,
    #[serde(default)]
    pub card_issuing_country: Option<String>,
    #[serde(default)]
    pub last4_digits: Option<String>,
    #[serde(default)]
    pub expiry_month: Option<String>,
    #[serde(default)]
    pub expiry_year: Option<String>,
}

/// An on-demand charge of a subscription's mandate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionCharge<'a> {
    /// Smallest currency unit.
    pub product_price: i64,
    /// Upper-case ISO code; the product's currency when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_currency: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_description: Option<&'a str>,
    /// The subscription's metadata when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<&'a str, &'a str>,
}

/// Dodo's answer to a charge: the payment it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionChargeCreated {
    pub payment_id: String,
}

/// One line of a payment: what a partial refund names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoProductCartItem {
    pub product_id: String,
    #[serde(default)]
    pub quantity: Option<u32>,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRefund<'a> {
    pub payment_id: &'a str,
    /// `None` refunds the whole payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<RefundItem<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundItem<'a> {
    /// The `product_id` (or addon id) of the payment's line.
    pub item_id: &'a str,
    /// Smallest currency unit; the whole line when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
}

/// The fields of Dodo's refund that billstream reads, as answered by `POST /refunds` and listed
/// in a payment's `refunds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoRefund {
    pub refund_id: String,
    pub payment_id: String,
    /// `succeeded`, `failed`, `pending` or `review`.
    pub status: String,
    #[serde(default)]
    pub is_partial: bool,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

/// How many payments one list request returns at most (Dodo's maximum page size).
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Serialize)]
struct CreateCustomerBody<'a> {
    email: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<&'a str, &'a str>,
}

#[derive(Deserialize)]
struct PaymentMethodList {
    items: Vec<DodoPaymentMethod>,
}

#[derive(Deserialize)]
struct PaymentList {
    items: Vec<DodoPayment>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    message: String,
}

impl DodoClient {
    /// A client for the API at `base_url`: [`LIVE_BASE_URL`], [`TEST_BASE_URL`], or a local fake.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            // Building fails only when the TLS backend cannot start, which no request could
            // survive either.
            .expect("the HTTP client's TLS backend initialises");
        Self::with_http_client(http, base_url, api_key)
    }

    /// Shares one connection pool across merchants' clients.
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            http,
            base_url,
            api_key: api_key.into(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /customers`. Dodo requires a name; pass the email when the customer has none.
    pub async fn create_customer(
        &self,
        email: &str,
        name: &str,
        metadata: &[(&str, &str)],
    ) -> Result<DodoCustomer, DodoError> {
        let body = CreateCustomerBody {
            email,
            name,
            metadata: metadata.iter().copied().collect(),
        };
        self.send(self.request(Method::POST, "/customers").json(&body))
            .await
    }

    /// `GET /customers/{customer_id}/payment-methods`.
    pub async fn list_customer_payment_methods(
        &self,
        customer_id: &str,
    ) -> Result<Vec<DodoPaymentMethod>, DodoError> {
        let path = format!("/customers/{}/payment-methods", path_segment(customer_id));
        let list: PaymentMethodList = self.send(self.request(Method::GET, &path)).await?;
        Ok(list.items)
    }

    /// `GET /subscriptions/{subscription_id}`.
    pub async fn retrieve_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<DodoSubscription, DodoError> {
        let path = format!("/subscriptions/{}", path_segment(subscription_id));
        self.send(self.request(Method::GET, &path)).await
    }

    /// `POST /subscriptions/{subscription_id}/update-payment-method`: with
    /// [`PaymentMethodUpdate::New`] Dodo answers with the payment link where the customer adds
    /// the new mandate; the outcome arrives later by webhook.
    pub async fn update_subscription_payment_method(
        &self,
        subscription_id: &str,
        update: &PaymentMethodUpdate,
    ) -> Result<PaymentMethodUpdateLink, DodoError> {
        let path = format!(
            "/subscriptions/{}/update-payment-method",
            path_segment(subscription_id)
        );
        self.send(self.request(Method::POST, &path).json(update))
            .await
    }

    /// `POST /subscriptions/{subscription_id}/charge`: charges the subscription's mandate
    /// `product_price`. Dodo answers with the payment at once and settles it later: the outcome
    /// arrives as a `payment.succeeded` or `payment.failed` webhook.
    pub async fn create_subscription_charge(
        &self,
        subscription_id: &str,
        charge: &SubscriptionCharge<'_>,
    ) -> Result<SubscriptionChargeCreated, DodoError> {
        let path = format!("/subscriptions/{}/charge", path_segment(subscription_id));
        self.send(self.request(Method::POST, &path).json(charge))
            .await
    }

    /// `GET /payments?subscription_id=…`: the subscription's most recent payments, at most
    /// [`MAX_PAGE_SIZE`] of them.
    pub async fn list_subscription_payments(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<DodoPayment>, DodoError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("subscription_id", subscription_id)
            .append_pair("page_size", &MAX_PAGE_SIZE.to_string())
            .finish();
        let list: PaymentList = self
            .send(self.request(Method::GET, &format!("/payments?{query}")))
            .await?;
        Ok(list.items)
    }

    /// `GET /payments/{payment_id}`, with its refunds.
    pub async fn retrieve_payment(&self, payment_id: &str) -> Result<DodoPayment, DodoError> {
        let path = format!("/payments/{}", path_segment(payment_id));
        self.send(self.request(Method::GET, &path)).await
    }

    /// `POST /refunds`.
    pub async fn create_refund(&self, refund: &NewRefund<'_>) -> Result<DodoRefund, DodoError> {
        self.send(self.request(Method::POST, "/refunds").json(refund))
            .await
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.api_key)
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, DodoError> {
        let response = request.send().await.map_err(DodoError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(DodoError::Transport)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| unexpected(status.as_u16(), &body));
        }
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(error) => Err(DodoError::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            }),
            Err(_) => Err(unexpected(status.as_u16(), &body)),
        }
    }
}

fn unexpected(status: u16, body: &[u8]) -> DodoError {
    let text = String::from_utf8_lossy(body);
    let body = match text.char_indices().nth(MAX_KEPT_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    };
    DodoError::UnexpectedResponse { status, body }
}

/// Ids come from webhooks, i.e. from outside: escape them so none can change the path.
fn path_segment(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_payment_method_update_is_tagged_by_type() {
        let update = PaymentMethodUpdate::New {
            return_url: Some("https://example.com/back".into()),
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"type": "new", "return_url": "https://example.com/back"})
        );
        let bare = PaymentMethodUpdate::New { return_url: None };
        assert_eq!(serde_json::to_value(&bare).unwrap(), json!({"type": "new"}));
    }

    #[test]
    fn an_existing_payment_method_update_names_the_method() {
        let update = PaymentMethodUpdate::Existing {
            payment_method_id: "pm_1".into(),
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({"type": "existing", "payment_method_id": "pm_1"})
        );
    }

    #[test]
    fn an_update_link_with_null_fields_parses() {
        let link: PaymentMethodUpdateLink = serde_json::from_value(json!({
            "payment_id": null, "payment_link": null, "client_secret": null, "expires_on": null
        }))
        .unwrap();
        assert_eq!(link.payment_link, None);
    }

    #[test]
    fn a_charge_sends_only_what_is_set() {
        let bare = SubscriptionCharge {
            product_price: 1999,
            product_currency: None,
            product_description: None,
            metadata: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"product_price": 1999})
        );
    }

    #[test]
    fn a_partial_refund_names_its_item() {
        let refund = NewRefund {
            payment_id: "pay_1",
            items: Some(vec![RefundItem {
                item_id: "pdt_1",
                amount: Some(500),
            }]),
            reason: None,
            metadata: BTreeMap::new(),
        };
        assert_eq!(
            serde_json::to_value(&refund).unwrap(),
            json!({"payment_id": "pay_1", "items": [{"item_id": "pdt_1", "amount": 500}]})
        );
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let client = DodoClient::new(TEST_BASE_URL, "dodo_secret_key");
        assert!(!format!("{client:?}").contains("dodo_secret_key"));
    }
}

/// The fields of Dodo's payment object that billstream reads, in webhooks and API answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DodoPayment {
    pub payment_id: String,
    /// `succeeded`, `failed`, `processing`, `cancelled`, `requires_payment_method`, …
    #[serde(default)]
    pub status: Option<String>,
    pub customer: DodoCustomerRef,
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// Smallest currency unit.
    #[serde(default)]
    pub total_amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// The method's kind, e.g. `card`.
    #[serde(default)]
    pub payment_method: Option<String>,
    #[serde(default)]
    pub payment_method_type: Option<String>,
    /// `VISA`, `MASTERCARD`, … as Dodo spells them.
    #[serde(default)]
    pub card_network: Option<String>,
    #[serde(default)]
    pub card_last_four: Option<String>,
    #[serde(default)]
    pub card_type: Option<String>,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// The products paid for; `null` for some subscription payments.
    #[serde(default)]
    pub product_cart: Option<Vec<DodoProductCartItem>>,
    /// The payment's refunds so far (API answers; absent from list items).
    #[serde(default)]
    pub refunds: Option<Vec<DodoRefund>>,
    #[serde(default)]
    pub metadata: Metadata,
}
