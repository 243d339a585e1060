//! A small Stripe API client: the calls billstream needs to collect a card through a
//! SetupIntent and read it back once the `setup_intent.succeeded` webhook names it, then charge
//! it off-session through a PaymentIntent and refund such a charge.
//!
//! Stripe takes form-encoded bodies (nested keys such as `metadata[key]`), authenticates with
//! the secret key as a Bearer token and answers errors as `{"error": {"type", "code", "message"}}`.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// Pinned so a change of the account's default API version cannot reshape the responses parsed
/// here; customers, setup intents and payment methods have kept these fields since.
pub const API_VERSION: &str = "2024-06-20";

pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Keeps a slow provider from holding a request (and a database transaction) open forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An error body is kept for diagnosis, but not without bound.
const MAX_KEPT_BODY: usize = 1024;

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base_url: String,
    secret_key: String,
}

impl std::fmt::Debug for StripeClient {
    // The secret key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum StripeError {
    /// Stripe understood the request and refused it.
    #[error("stripe refused the request ({status}, {kind}): {message}")]
    Api {
        status: u16,
        /// Stripe's `error.type`, e.g. `invalid_request_error`, `card_error`.
        kind: String,
        /// Stripe's `error.code`, e.g. `resource_missing`, `card_declined`.
        code: Option<String>,
        message: String,
        param: Option<String>,
        /// For a declined card, the issuer's reason, e.g. `insufficient_funds`.
        decline_code: Option<String>,
    },
    /// Stripe could not be reached, or the connection broke.
    #[error("stripe could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// Something answered, but not in Stripe's documented shape (a proxy page, a wrong base URL).
    #[error("stripe answered {status} with an unexpected body: {body}")]
    UnexpectedResponse { status: u16, body: String },
}

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeCustomer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupIntent {
    pub id: String,
    /// Handed to Stripe.js in the browser to confirm the intent with the card.
    pub client_secret: String,
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub payment_method: Option<String>,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `canceled` or `succeeded`.
    pub status: String,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    #[serde(default)]
    pub customer: Option<String>,
    /// `card`, `sepa_debit`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub card: Option<PaymentMethodCard>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodCard {
    /// `visa`, `mastercard`, `amex`, `discover`, … or `unknown`.
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

/// The fields of Stripe's PaymentIntent that billstream reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`, `processing`,
    /// `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    /// Smallest currency unit.
    pub amount: i64,
    /// Lower-case ISO code.
    pub currency: String,
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub payment_method: Option<String>,
    /// Why the last attempt failed, e.g. the decline that left it `requires_payment_method`.
    #[serde(default)]
    pub last_payment_error: Option<LastPaymentError>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPaymentError {
    /// `card_error`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// An off-session charge of a saved payment method, confirmed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPaymentIntent<'a> {
    /// Smallest currency unit.
    pub amount: i64,
    /// ISO code in any case; sent lower-case, as Stripe wants it.
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub payment_method: &'a str,
    pub description: Option<&'a str>,
    pub metadata: &'a [(&'a str, &'a str)],
}

/// The fields of Stripe's Refund that billstream reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeRefund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

impl StripeClient {
    /// A client for the API at `base_url` (use [`DEFAULT_BASE_URL`] in production; tests point
    /// it at a local fake).
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            // Building fails only when the TLS backend cannot start, which no request could
            // survive either.
            .expect("the HTTP client's TLS backend initialises");
        Self::with_http_client(http, base_url, secret_key)
    }

    /// Shares one connection pool across merchants' clients.
    pub fn with_http_client(
        http: reqwest::Client,
        base_url: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Self {
            http,
            base_url,
            secret_key: secret_key.into(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /v1/customers`.
    pub async fn create_customer(
        &self,
        email: &str,
        name: Option<&str>,
        metadata: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<StripeCustomer, StripeError> {
        let mut form = Form::default();
        form.push("email", email);
        if let Some(name) = name {
            form.push("name", name);
        }
        form.push_metadata(metadata);
        self.post("/v1/customers", form, idempotency_key).await
    }

    /// `POST /v1/setup_intents` for a card the merchant may charge later without the customer
    /// present (`usage=off_session`), which is what a subscription's renewals need.
    pub async fn create_setup_intent(
        &self,
        customer_id: &str,
        metadata: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<SetupIntent, StripeError> {
        let mut form = Form::default();
        form.push("customer", customer_id);
        form.push("usage", "off_session");
        form.push("payment_method_types[]", "card");
        form.push_metadata(metadata);
        self.post("/v1/setup_intents", form, idempotency_key).await
    }

    /// `POST /v1/payment_intents`, confirmed at once and off-session: the customer is not
    /// present, so a card that needs them (3-D Secure) fails rather than waits. A declined card
    /// is an HTTP 402 [`StripeError::Api`] of kind `card_error`. Stripe replays the first answer
    /// to a retry with the same `idempotency_key`, so a retry never charges twice.
    pub async fn create_payment_intent(
        &self,
        intent: &NewPaymentIntent<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentIntent, StripeError> {
        let mut form = Form::default();
        form.push("amount", &intent.amount.to_string());
        form.push("currency", &intent.currency.to_ascii_lowercase());
        if let Some(customer) = intent.customer {
            form.push("customer", customer);
        }
        form.push("payment_method", intent.payment_method);
        form.push("confirm", "true");
        form.push("off_session", "true");
        if let Some(description) = intent.description {
            form.push("description", description);
        }
        form.push_metadata(intent.metadata);
        self.post("/v1/payment_intents", form, idempotency_key)
            .await
    }

    /// `POST /v1/refunds` of a PaymentIntent's charge: all that is left of it when `amount` is
    /// `None`.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        amount: Option<i64>,
        metadata: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<StripeRefund, StripeError> {
        let mut form = Form::default();
        form.push("payment_intent", payment_intent);
        if let Some(amount) = amount {
            form.push("amount", &amount.to_string());
        }
        form.push_metadata(metadata);
        self.post("/v1/refunds", form, idempotency_key).await
    }

    /// `GET /v1/payment_methods/{id}`.
    pub async fn retrieve_payment_method(&self, id: &str) -> Result<PaymentMethod, StripeError> {
        let path = format!("/v1/payment_methods/{}", path_segment(id));
        self.send(self.request(Method::GET, &path)).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: Form,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut request = self
            .request(Method::POST, path)
            .header(CONTENT_TYPE, HeaderValue::from_static(FORM_CONTENT_TYPE))
            .body(form.finish());
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.secret_key)
            .header("Stripe-Version", API_VERSION)
    }

    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, StripeError> {
        let response = request.send().await.map_err(StripeError::Transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(StripeError::Transport)?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|_| unexpected(status.as_u16(), &body));
        }
        match serde_json::from_slice::<ErrorEnvelope>(&body) {
            Ok(ErrorEnvelope { error }) => Err(StripeError::Api {
                status: status.as_u16(),
                message: error
                    .message
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
                kind: error.kind,
                code: error.code,
                param: error.param,
                decline_code: error.decline_code,
            }),
            Err(_) => Err(unexpected(status.as_u16(), &body)),
        }
    }
}

fn unexpected(status: u16, body: &[u8]) -> StripeError {
    let text = String::from_utf8_lossy(body);
    let body = match text.char_indices().nth(MAX_KEPT_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    };
    StripeError::UnexpectedResponse { status, body }
}

/// Ids come from webhooks, i.e. from outside: escape them so none can change the path.
fn path_segment(id: &str) -> String {
    form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// A form body in Stripe's dialect: nested keys are spelled out as `parent[child]`.
#[derive(Default)]
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn push(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    fn push_metadata(&mut self, metadata: &[(&str, &str)]) {
        for (key, value) in metadata {
            self.pairs
                .push((format!("metadata[{key}]"), (*value).to_owned()));
        }
    }

    fn finish(self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.pairs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_spells_nested_keys_with_brackets() {
        let mut form = Form::default();
        form.push("payment_method_types[]", "card");
        form.push_metadata(&[("billstream_customer_id", "cust_1")]);
        let decoded: Vec<(String, String)> = form_urlencoded::parse(form.finish().as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            decoded,
            vec![
                ("payment_method_types[]".to_owned(), "card".to_owned()),
                (
                    "metadata[billstream_customer_id]".to_owned(),
                    "cust_1".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn path_segments_cannot_climb_out_of_the_resource() {
        assert_eq!(path_segment("pm_123"), "pm_123");
        assert_eq!(path_segment("../v1/customers"), "..%2Fv1%2Fcustomers");
    }

    #[test]
    fn debug_output_hides_the_secret_key() {
        let client = StripeClient::new(DEFAULT_BASE_URL, "sk_test_secret");
        assert!(!format!("{client:?}").contains("sk_test_secret"));
    }

    #[test]
    fn long_unexpected_bodies_are_cut() {
        let body = "x".repeat(5000);
        match unexpected(502, body.as_bytes()) {
            StripeError::UnexpectedResponse { body, .. } => {
                assert!(body.chars().count() <= MAX_KEPT_BODY + 1)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
