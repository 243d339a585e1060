use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, PaymentMethodId};
use crate::money::MAX_AMOUNT_CENTS;
use crate::payment::{
    PaymentCommand, PaymentError, PaymentEvent, PaymentKind, PaymentServices, PaymentStatus,
    SettlementOutcome,
};
use crate::provider::Provider;
use crate::tenant::Tenant;
use crate::top_up::TopUpPurchase;

/// A payment as its events describe it. `Default` is the payment that was never initiated:
/// cqrs-es loads an unknown id that way.
///
/// A payment is settled once. The provider's answer and its webhook may both report it, in
/// either order: the second report of the same outcome changes nothing, and a report of the
/// other outcome is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: Option<PaymentId>,
    pub tenant: Option<Tenant>,
    pub customer_id: Option<CustomerId>,
    pub invoice_id: Option<InvoiceId>,
    pub payment_method_id: Option<PaymentMethodId>,
    pub provider: Option<Provider>,
    pub kind: Option<PaymentKind>,
    /// Negative for a refund.
    pub amount_cents: i64,
    pub currency: Option<Currency>,
    pub status: Option<PaymentStatus>,
    pub error_message: Option<String>,
    pub error_code: Option<String>,
    pub provider_reference: Option<String>,
    pub refunded_payment_id: Option<PaymentId>,
    /// What it buys, when it is a top-up's charge.
    #[serde(default)]
    pub top_up: Option<TopUpPurchase>,
    pub created_at: Option<DateTime<Utc>>,
    pub settled_at: Option<DateTime<Utc>>,
}

impl Payment {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn is_settled(&self) -> bool {
        matches!(
            self.status,
            Some(PaymentStatus::Succeeded | PaymentStatus::Failed)
        )
    }

    /// The payment as `tenant` may see it: another tenant's does not exist for it.
    fn owned_by(&self, tenant: &Tenant) -> Result<(), PaymentError> {
        match &self.tenant {
            Some(owner) if self.exists() && owner == tenant => Ok(()),
            _ => Err(PaymentError::NotFound),
        }
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = PaymentServices;

    async fn handle(
        &mut self,
        command: PaymentCommand,
        services: &PaymentServices,
        sink: &EventSink<Self>,
    ) -> Result<(), PaymentError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            PaymentCommand::Initiate {
                id,
                tenant,
                customer_id,
                invoice_id,
                payment_method_id,
                provider,
                kind,
                amount_cents,
                currency,
                refunded_payment_id,
                top_up,
            } => {
                if self.exists() {
                    return Err(PaymentError::AlreadyExists);
                }
                if !(1..=MAX_AMOUNT_CENTS).contains(&amount_cents) {
                    return Err(PaymentError::InvalidAmount);
                }
                let amount_cents = match (kind, &refunded_payment_id) {
                    (PaymentKind::Charge, None) => amount_cents,
                    (PaymentKind::Charge, Some(_)) => {
                        return Err(PaymentError::ChargeRefundsNothing)
                    }
                    (PaymentKind::Refund, Some(_)) => amount_cents
                        .checked_neg()
                        .ok_or(PaymentError::InvalidAmount)?,
                    (PaymentKind::Refund, None) => return Err(PaymentError::RefundWithoutPayment),
                };
                if let Some(purchase) = &top_up {
                    if kind != PaymentKind::Charge || purchase.amount_cents() != amount_cents {
                        return Err(PaymentError::TopUpAmountMismatch);
                    }
                }
                let event = PaymentEvent::PaymentInitiated {
                    id,
                    tenant,
                    customer_id,
                    invoice_id,
                    payment_method_id,
                    provider,
                    kind,
                    amount_cents,
                    currency,
                    refunded_payment_id,
                    top_up,
                    at,
                };
                sink.write(event, self).await;
            }
            PaymentCommand::Settle { tenant, outcome } => {
                self.owned_by(&tenant)?;
                let event = match (self.status, outcome) {
                    (
                        Some(PaymentStatus::Pending),
                        SettlementOutcome::Succeeded { provider_reference },
                    ) => PaymentEvent::PaymentSucceeded {
                        provider_reference,
                        at,
                    },
                    (Some(PaymentStatus::Pending), SettlementOutcome::Failed { message, code }) => {
                        PaymentEvent::PaymentFailed {
                            error_message: message,
                            error_code: code,
                            at,
                        }
                    }
                    (Some(PaymentStatus::Succeeded), SettlementOutcome::Succeeded { .. })
                    | (Some(PaymentStatus::Failed), SettlementOutcome::Failed { .. }) => {
                        return Ok(())
                    }
                    _ => return Err(PaymentError::AlreadySettled),
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: PaymentEvent) {
        match event {
            PaymentEvent::PaymentInitiated {
                id,
                tenant,
                customer_id,
                invoice_id,
                payment_method_id,
                provider,
                kind,
                amount_cents,
                currency,
                refunded_payment_id,
                top_up,
                at,
            } => {
                self.top_up = top_up;
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.invoice_id = invoice_id;
                self.payment_method_id = payment_method_id;
                self.provider = Some(provider);
                self.kind = Some(kind);
                self.amount_cents = amount_cents;
                self.currency = Some(currency);
                self.refunded_payment_id = refunded_payment_id;
                self.status = Some(PaymentStatus::Pending);
                self.created_at = Some(at);
            }
            PaymentEvent::PaymentSucceeded {
                provider_reference,
                at,
            } => {
                self.status = Some(PaymentStatus::Succeeded);
                self.provider_reference = provider_reference;
                self.settled_at = Some(at);
            }
            PaymentEvent::PaymentFailed {
                error_message,
                error_code,
                at,
            } => {
                self.status = Some(PaymentStatus::Failed);
                self.error_message = Some(error_message);
                self.error_code = error_code;
                self.settled_at = Some(at);
            }
        }
    }
}
