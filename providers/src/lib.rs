//! Payment providers as billstream talks to them: the built-in sandbox card check, the HTTP
//! clients for Stripe and Dodo Payments, the webhook signature schemes each one uses, and the
//! [`PaymentGateway`] port that puts all three behind one trait.
//!
//! This crate knows nothing of billstream's domain: it speaks each provider's wire format and
//! hands back plain values, so the api crate decides what a setup intent or a webhook means for
//! a customer. With the `fakes` feature it also serves fake Stripe and Dodo APIs on a local port,
//! so tests exercise the real clients over real HTTP.

pub mod dodo;
pub mod dodo_webhook;
pub mod gateway;
pub mod sandbox;
pub mod standard_webhooks;
pub mod stripe;
pub mod stripe_webhook;

#[cfg(feature = "fakes")]
pub mod fakes;

pub use dodo::{DodoClient, DodoError};
pub use gateway::{
    Charge, ChargeRequest, ChargeStatus, CollectedCard, CollectedMethod, CustomerDetails, Delivery,
    DodoGateway, EventMeaning, GatewayError, Interpreted, PaymentGateway, Refund, RefundRequest,
    SandboxGateway, SetupIntent, SetupIntentRequest, StripeGateway,
};
pub use sandbox::{CardBrand, SandboxCard, SandboxCardError};
pub use standard_webhooks::{StandardWebhookError, StandardWebhookSecret};
pub use stripe::{StripeClient, StripeError};
pub use stripe_webhook::{StripeEvent, StripeWebhookError};
