//! The built-in sandbox as a gateway: no provider behind it, and deterministic answers a
//! developer can steer with Stripe's test cards (see [`crate::sandbox`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use super::{
    Charge, ChargeRequest, ChargeStatus, CollectedMethod, CustomerDetails, Delivery, GatewayError,
    Interpreted, PaymentGateway, Refund, RefundRequest, SetupIntent, SetupIntentRequest,
};
use crate::sandbox::CHARGE_DECLINES;

/// The sandbox: billstream confirms setup intents itself, keeps only a card's last four digits,
/// and charges by them: cards ending in `0341` are declined (`card_declined`), in `9995` for
/// `insufficient_funds`, every other card is charged. Charges and refunds succeed at once, with
/// ids derived from ours (`sandbox_pay_<payment_id>`, `sandbox_re_<refund_id>`), so a retry
/// answers the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxGateway;

#[async_trait]
impl PaymentGateway for SandboxGateway {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn serves_live(&self) -> Option<bool> {
        None
    }

    async fn create_customer(
        &self,
        _customer: &CustomerDetails<'_>,
        _idempotency_key: Option<&str>,
    ) -> Result<Option<String>, GatewayError> {
        Ok(None)
    }

    async fn create_setup_intent(
        &self,
        _request: &SetupIntentRequest<'_>,
    ) -> Result<SetupIntent, GatewayError> {
        Ok(SetupIntent::Local)
    }

    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<Charge, GatewayError> {
        if request.amount_cents <= 0 {
            return Err(GatewayError::failed(
                "charge the payment method",
                "the amount must be positive",
            ));
        }
        if let Some((_, code, message)) = CHARGE_DECLINES
            .iter()
            .find(|(last_four, ..)| *last_four == request.payment_method)
        {
            return Err(GatewayError::Declined {
                code: (*code).to_owned(),
                message: (*message).to_owned(),
            });
        }
        Ok(Charge {
            provider_payment_id: format!("sandbox_pay_{}", request.payment_id),
            status: ChargeStatus::Succeeded,
        })
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refund, GatewayError> {
        if request.amount_cents <= 0 {
            return Err(GatewayError::failed(
                "refund the payment",
                "the amount must be positive",
            ));
        }
        Ok(Refund {
            provider_refund_id: format!("sandbox_re_{}", request.refund_id),
            status: ChargeStatus::Succeeded,
        })
    }

    async fn describe_payment_method(
        &self,
        _reference: &str,
        _provider_customer: Option<&str>,
    ) -> Result<CollectedMethod, GatewayError> {
        // The sandbox's card is described when it is confirmed; no provider holds it.
        Err(GatewayError::Unsupported(
            "Describing a sandbox payment method",
        ))
    }

    fn verify_delivery(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<Delivery, GatewayError> {
        Err(GatewayError::NotConfigured("Sandbox webhooks"))
    }

    fn interpret(&self, _body: &[u8]) -> Result<Interpreted, GatewayError> {
        Err(GatewayError::NotConfigured("Sandbox webhooks"))
    }
}
