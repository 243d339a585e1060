//! Stripe as a gateway: customers, SetupIntents for Stripe.js, off-session PaymentIntents,
//! refunds, and Stripe-signed webhooks.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use super::{
    Charge, ChargeRequest, ChargeStatus, CollectedCard, CollectedMethod, CustomerDetails, Delivery,
    EventMeaning, GatewayError, Interpreted, PaymentGateway, Refund, RefundRequest, SetupIntent,
    SetupIntentRequest,
};
use crate::stripe::{NewPaymentIntent, PaymentIntent, StripeClient, StripeError};
use crate::stripe_webhook::{
    self, StripeEvent, PAYMENT_INTENT_FAILED, PAYMENT_INTENT_SUCCEEDED, SETUP_INTENT_SUCCEEDED,
};

/// The metadata key of a PaymentIntent that names our payment.
const PAYMENT_METADATA: &str = "billstream_payment_id";
/// The metadata key of a Refund that names our refund.
const REFUND_METADATA: &str = "billstream_refund_id";

/// Stripe's `decline_code` when the issuer gave no reason; the error's `code` (`card_declined`)
/// says as much.
const GENERIC_DECLINE: &str = "generic_decline";

/// A merchant's Stripe account.
#[derive(Clone)]
pub struct StripeGateway {
    client: StripeClient,
    publishable_key: Option<String>,
    webhook_secret: Option<String>,
    secret_key_mode: Option<bool>,
}

// The webhook secret must never reach a log line (the client hides its key itself).
impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("client", &self.client)
            .field("publishable_key", &self.publishable_key)
            .field("has_webhook_secret", &self.webhook_secret.is_some())
            .field("serves_live", &self.secret_key_mode)
            .finish()
    }
}

/// The mode Stripe runs `secret_key` in, read from its prefix: `Some(false)` for `sk_test_` and
/// `rk_test_`, `Some(true)` for `sk_live_` and `rk_live_`, `None` for a key of another shape.
pub fn secret_key_serves_live(secret_key: &str) -> Option<bool> {
    if secret_key.starts_with("sk_test_") || secret_key.starts_with("rk_test_") {
        Some(false)
    } else if secret_key.starts_with("sk_live_") || secret_key.starts_with("rk_live_") {
        Some(true)
    } else {
        None
    }
}

impl StripeGateway {
    /// `client` must use `secret_key`; the key is read here only for its mode.
    pub fn new(
        client: StripeClient,
        secret_key: &str,
        publishable_key: Option<String>,
        webhook_secret: Option<String>,
    ) -> Self {
        Self {
            client,
            publishable_key,
            webhook_secret,
            secret_key_mode: secret_key_serves_live(secret_key),
        }
    }

    pub fn client(&self) -> &StripeClient {
        &self.client
    }

    pub fn publishable_key(&self) -> Option<&str> {
        self.publishable_key.as_deref()
    }
}

/// Stripe's refusal to use a customer it no longer has.
fn is_customer_missing(error: &StripeError) -> bool {
    matches!(error, StripeError::Api { code: Some(code), param: Some(param), .. }
        if code == "resource_missing" && param == "customer")
}

fn failure(action: &'static str, error: StripeError) -> GatewayError {
    if is_customer_missing(&error) {
        GatewayError::CustomerMissing
    } else {
        GatewayError::failed(action, error)
    }
}

/// The decline's most telling code: the issuer's reason when it gave one, else Stripe's code.
fn decline_code(code: Option<&str>, decline_code: Option<&str>) -> String {
    decline_code
        .filter(|d| *d != GENERIC_DECLINE)
        .or(code)
        .unwrap_or("card_declined")
        .to_owned()
}

fn charge_failure(error: StripeError) -> GatewayError {
    match error {
        StripeError::Api {
            kind,
            code,
            decline_code: decline,
            message,
            ..
        } if kind == "card_error" => GatewayError::Declined {
            code: decline_code(code.as_deref(), decline.as_deref()),
            message,
        },
        other => failure("charge the payment method", other),
    }
}

fn charge_outcome(intent: PaymentIntent) -> Result<Charge, GatewayError> {
    let status = match intent.status.as_str() {
        "succeeded" => ChargeStatus::Succeeded,
        "processing" => ChargeStatus::Pending,
        // Off-session, nobody is there to authenticate: a failure the portal can show.
        "requires_action" => {
            return Err(GatewayError::Declined {
                code: "authentication_required".to_owned(),
                message: "Authentication required".to_owned(),
            })
        }
        other => {
            return Err(match intent.last_payment_error {
                // Confirming failed; Stripe answers this as a 402, but says it here too.
                Some(error) if other == "requires_payment_method" => GatewayError::Declined {
                    code: decline_code(error.code.as_deref(), error.decline_code.as_deref()),
                    message: error
                        .message
                        .unwrap_or_else(|| "Your card was declined.".to_owned()),
                },
                _ => GatewayError::failed(
                    "charge the payment method",
                    format!("the payment intent {} is {other}", intent.id),
                ),
            });
        }
    };
    Ok(Charge {
        provider_payment_id: intent.id,
        status,
    })
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn serves_live(&self) -> Option<bool> {
        self.secret_key_mode
    }

    async fn create_customer(
        &self,
        customer: &CustomerDetails<'_>,
        idempotency_key: Option<&str>,
    ) -> Result<Option<String>, GatewayError> {
        let created = self
            .client
            .create_customer(
                customer.email,
                customer.name,
                customer.metadata,
                idempotency_key,
            )
            .await
            .map_err(|e| GatewayError::failed("create the customer", e))?;
        Ok(Some(created.id))
    }

    async fn create_setup_intent(
        &self,
        request: &SetupIntentRequest<'_>,
    ) -> Result<SetupIntent, GatewayError> {
        let customer = request
            .provider_customer
            .ok_or_else(|| GatewayError::failed("create the setup intent", "no Stripe customer"))?;
        let intent = self
            .client
            .create_setup_intent(customer, request.metadata, None)
            .await
            .map_err(|e| failure("create the setup intent", e))?;
        Ok(SetupIntent::Stripe {
            intent_id: intent.id,
            client_secret: intent.client_secret,
            publishable_key: self.publishable_key.clone(),
        })
    }

    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<Charge, GatewayError> {
        let metadata = [(PAYMENT_METADATA, request.payment_id)];
        let intent = NewPaymentIntent {
            amount: request.amount_cents,
            currency: request.currency,
            customer: request.provider_customer,
            payment_method: request.payment_method,
            description: request.description,
            metadata: &metadata,
        };
        let intent = self
            .client
            .create_payment_intent(&intent, Some(request.payment_id))
            .await
            .map_err(charge_failure)?;
        charge_outcome(intent)
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refund, GatewayError> {
        const ACTION: &str = "refund the payment";
        let refund = self
            .client
            .create_refund(
                request.provider_payment_id,
                Some(request.amount_cents),
                &[(REFUND_METADATA, request.refund_id)],
                Some(request.refund_id),
            )
            .await
            .map_err(|e| GatewayError::failed(ACTION, e))?;
        let status = match refund.status.as_str() {
            "succeeded" => ChargeStatus::Succeeded,
            "pending" | "requires_action" => ChargeStatus::Pending,
            other => {
                return Err(GatewayError::failed(
                    ACTION,
                    format!(
                        "the refund {} is {other} ({})",
                        refund.id,
                        refund
                            .failure_reason
                            .as_deref()
                            .unwrap_or("no reason given")
                    ),
                ))
            }
        };
        Ok(Refund {
            provider_refund_id: refund.id,
            status,
        })
    }

    async fn describe_payment_method(
        &self,
        reference: &str,
        _provider_customer: Option<&str>,
    ) -> Result<CollectedMethod, GatewayError> {
        let method = self
            .client
            .retrieve_payment_method(reference)
            .await
            .map_err(|e| GatewayError::failed("return the payment method", e))?;
        Ok(CollectedMethod {
            reference: method.id,
            payment_type: method.kind,
            card: method.card.map(|card| CollectedCard {
                brand: card.brand,
                last_four: card.last4,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
            }),
        })
    }

    fn verify_delivery(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Delivery, GatewayError> {
        let secret = self
            .webhook_secret
            .as_deref()
            .ok_or(GatewayError::NotConfigured("Stripe"))?;
        let signature = headers
            .get(stripe_webhook::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        let event = stripe_webhook::construct_event(body, signature, secret, now)?;
        Ok(Delivery {
            id: event.id,
            livemode: Some(event.livemode),
        })
    }

    fn interpret(&self, body: &[u8]) -> Result<Interpreted, GatewayError> {
        let event: StripeEvent =
            serde_json::from_slice(body).map_err(|_| GatewayError::invalid_payload())?;
        let meaning = match event.event_type.as_str() {
            SETUP_INTENT_SUCCEEDED => {
                let intent = event.setup_intent_succeeded()?;
                EventMeaning::PaymentMethodCollected {
                    payment_method: intent.payment_method,
                    metadata: intent.metadata,
                }
            }
            PAYMENT_INTENT_SUCCEEDED | PAYMENT_INTENT_FAILED => {
                let intent = event.payment_intent()?;
                match intent.metadata.get(PAYMENT_METADATA) {
                    // An intent billstream did not make (the merchant's own): not ours.
                    None => EventMeaning::Other,
                    Some(payment_id) => EventMeaning::PaymentSettled {
                        payment_id: payment_id.clone(),
                        provider_reference: intent.id,
                        failure: (event.event_type == PAYMENT_INTENT_FAILED).then(|| {
                            let error = intent.last_payment_error.unwrap_or(
                                stripe_webhook::PaymentIntentError {
                                    code: None,
                                    decline_code: None,
                                    message: None,
                                },
                            );
                            (
                                decline_code(error.code.as_deref(), error.decline_code.as_deref()),
                                error
                                    .message
                                    .unwrap_or_else(|| "Your card was declined.".to_owned()),
                            )
                        }),
                    },
                }
            }
            _ => EventMeaning::Other,
        };
        Ok(Interpreted {
            event_type: event.event_type,
            meaning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_is_read_from_the_secret_keys_prefix() {
        assert_eq!(secret_key_serves_live("sk_test_abc"), Some(false));
        assert_eq!(secret_key_serves_live("rk_test_abc"), Some(false));
        assert_eq!(secret_key_serves_live("sk_live_abc"), Some(true));
        assert_eq!(secret_key_serves_live("rk_live_abc"), Some(true));
        assert_eq!(secret_key_serves_live("pk_live_abc"), None);
        assert_eq!(secret_key_serves_live("whatever"), None);
    }

    #[test]
    fn a_decline_says_the_issuers_reason_unless_it_gave_none() {
        assert_eq!(
            decline_code(Some("card_declined"), Some("insufficient_funds")),
            "insufficient_funds"
        );
        assert_eq!(
            decline_code(Some("card_declined"), Some("generic_decline")),
            "card_declined"
        );
        assert_eq!(decline_code(Some("expired_card"), None), "expired_card");
        assert_eq!(decline_code(None, None), "card_declined");
    }

    #[test]
    fn debug_output_hides_the_webhook_secret() {
        let gateway = StripeGateway::new(
            StripeClient::new(crate::stripe::DEFAULT_BASE_URL, "sk_test_secret"),
            "sk_test_secret",
            None,
            Some("whsec_very_secret".into()),
        );
        let debug = format!("{gateway:?}");
        assert!(!debug.contains("whsec_very_secret"), "{debug}");
        assert!(!debug.contains("sk_test_secret"), "{debug}");
    }
}
