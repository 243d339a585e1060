use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::payment_method::{
    Card, PaymentMethodCommand, PaymentMethodError, PaymentMethodEvent, PaymentMethodServices,
};
use crate::provider::Provider;
use crate::tenant::Tenant;

/// A payment method as its events describe it. `Default` is the payment method that was never
/// added: cqrs-es loads an unknown id that way.
///
/// The invariant this aggregate protects, with the application's help: a payment method that
/// an active subscription points at is always marked linked, so it can never be removed from
/// under that subscription. Two aggregates cannot change in one transaction, so the order of
/// the writes keeps it: the application links the new method *before* the subscription points
/// at it, and unlinks the old one only *after* the subscription stopped pointing at it (it
/// changed payment method or was canceled). A crash between two writes then leaves a method
/// linked that no subscription uses, which blocks its removal until the unlink is retried,
/// and never a subscription charging a removed method.
///
/// One link at a time: linking to another subscription replaces the link. That keeps the
/// invariant only while a payment method serves one active subscription, which holds as long
/// as a customer has at most one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethod {
    pub id: Option<PaymentMethodId>,
    pub tenant: Option<Tenant>,
    pub customer_id: Option<CustomerId>,
    pub provider: Option<Provider>,
    pub payment_type: Option<String>,
    pub card: Option<Card>,
    pub provider_reference: Option<String>,
    pub linked_subscription: Option<SubscriptionId>,
    pub added_at: Option<DateTime<Utc>>,
    pub removed_at: Option<DateTime<Utc>>,
}

impl PaymentMethod {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn is_removed(&self) -> bool {
        self.removed_at.is_some()
    }

    pub fn is_linked(&self) -> bool {
        self.linked_subscription.is_some()
    }

    /// The payment method as `tenant` may see it, removed or not: another tenant's does not
    /// exist for it.
    fn owned_by(&self, tenant: &Tenant) -> Result<(), PaymentMethodError> {
        match &self.tenant {
            Some(owner) if self.exists() && owner == tenant => Ok(()),
            _ => Err(PaymentMethodError::NotFound),
        }
    }

    /// As [`Self::owned_by`], and not removed.
    fn live_for(&self, tenant: &Tenant) -> Result<(), PaymentMethodError> {
        self.owned_by(tenant)?;
        if self.is_removed() {
            return Err(PaymentMethodError::Removed);
        }
        Ok(())
    }
}

impl Aggregate for PaymentMethod {
    const TYPE: &'static str = "PaymentMethod";
    type Command = PaymentMethodCommand;
    type Event = PaymentMethodEvent;
    type Error = PaymentMethodError;
    type Services = PaymentMethodServices;

    async fn handle(
        &mut self,
        command: PaymentMethodCommand,
        services: &PaymentMethodServices,
        sink: &EventSink<Self>,
    ) -> Result<(), PaymentMethodError> {
        let at = services.clock.now_for(command.tenant());
        match command {
            PaymentMethodCommand::AddPaymentMethod {
                id,
                tenant,
                customer_id,
                provider,
                payment_type,
                card,
                provider_reference,
            } => {
                if self.exists() {
                    return Err(PaymentMethodError::AlreadyExists);
                }
                if card.as_ref().is_some_and(|card| !card.has_valid_expiry()) {
                    return Err(PaymentMethodError::InvalidCardExpiry);
                }
                let event = PaymentMethodEvent::PaymentMethodAdded {
                    id,
                    tenant,
                    customer_id,
                    provider,
                    payment_type,
                    card,
                    provider_reference,
                    at,
                };
                sink.write(event, self).await;
            }
            PaymentMethodCommand::LinkPaymentMethod {
                tenant,
                subscription_id,
            } => {
                self.live_for(&tenant)?;
                if self.linked_subscription.as_ref() == Some(&subscription_id) {
                    return Ok(());
                }
                let event = PaymentMethodEvent::PaymentMethodLinked {
                    subscription_id,
                    at,
                };
                sink.write(event, self).await;
            }
            // A removed payment method is never linked (removal is refused while it is), so
            // unlinking one finds nothing to do rather than an error: the application's
            // clean-up after a subscription change must not fail on it.
            PaymentMethodCommand::UnlinkPaymentMethod {
                tenant,
                subscription_id,
            } => {
                self.owned_by(&tenant)?;
                if self.linked_subscription.as_ref() != Some(&subscription_id) {
                    return Ok(());
                }
                let event = PaymentMethodEvent::PaymentMethodUnlinked {
                    subscription_id,
                    at,
                };
                sink.write(event, self).await;
            }
            PaymentMethodCommand::RemovePaymentMethod { tenant } => {
                self.live_for(&tenant)?;
                if self.is_linked() {
                    return Err(PaymentMethodError::LinkedToActiveSubscription);
                }
                sink.write(PaymentMethodEvent::PaymentMethodRemoved { at }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: PaymentMethodEvent) {
        match event {
            PaymentMethodEvent::PaymentMethodAdded {
                id,
                tenant,
                customer_id,
                provider,
                payment_type,
                card,
                provider_reference,
                at,
            } => {
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.provider = Some(provider);
                self.payment_type = Some(payment_type);
                self.card = card;
                self.provider_reference = provider_reference;
                self.added_at = Some(at);
            }
            PaymentMethodEvent::PaymentMethodLinked {
                subscription_id, ..
            } => {
                self.linked_subscription = Some(subscription_id);
            }
            PaymentMethodEvent::PaymentMethodUnlinked { .. } => {
                self.linked_subscription = None;
            }
            PaymentMethodEvent::PaymentMethodRemoved { at } => {
                self.removed_at = Some(at);
            }
        }
    }
}
