use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::subscription::{
    PlanSnapshot, SubscriptionCommand, SubscriptionError, SubscriptionEvent, SubscriptionServices,
    SubscriptionStatus,
};
use crate::tenant::Tenant;

/// A subscription as its events describe it. `Default` is the subscription that was never
/// started: cqrs-es loads an unknown id that way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: Option<SubscriptionId>,
    pub tenant: Option<Tenant>,
    pub customer_id: Option<CustomerId>,
    pub plan: Option<PlanSnapshot>,
    pub payment_method_id: Option<PaymentMethodId>,
    pub status: Option<SubscriptionStatus>,
    pub started_at: Option<DateTime<Utc>>,
    pub grace_period_ends_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
}

impl Subscription {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// True while the customer has this subscription: a past-due one still is theirs until
    /// it is canceled.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            Some(SubscriptionStatus::Active | SubscriptionStatus::PastDue)
        )
    }

    /// The subscription as `tenant` may see it: another tenant's does not exist for it.
    fn owned_by(&self, tenant: &Tenant) -> Result<(), SubscriptionError> {
        match &self.tenant {
            Some(owner) if self.exists() && owner == tenant => Ok(()),
            _ => Err(SubscriptionError::NotFound),
        }
    }

    /// As [`Self::owned_by`], and not canceled: what every change but cancelling asks.
    fn changeable_by(&self, tenant: &Tenant) -> Result<(), SubscriptionError> {
        self.owned_by(tenant)?;
        if self.status == Some(SubscriptionStatus::Canceled) {
            return Err(SubscriptionError::Canceled);
        }
        Ok(())
    }
}

impl Aggregate for Subscription {
    const TYPE: &'static str = "Subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;
    type Services = SubscriptionServices;

    async fn handle(
        &mut self,
        command: SubscriptionCommand,
        services: &SubscriptionServices,
        sink: &EventSink<Self>,
    ) -> Result<(), SubscriptionError> {
        let at = services.clock.now();
        match command {
            SubscriptionCommand::StartSubscription {
                id,
                tenant,
                customer_id,
                plan,
                payment_method_id,
            } => {
                if self.exists() {
                    return Err(SubscriptionError::AlreadyExists);
                }
                let event = SubscriptionEvent::SubscriptionStarted {
                    id,
                    tenant,
                    customer_id,
                    plan,
                    payment_method_id,
                    at,
                };
                sink.write(event, self).await;
            }
            SubscriptionCommand::ChangeSubscriptionPaymentMethod {
                tenant,
                payment_method_id,
            } => {
                self.changeable_by(&tenant)?;
                if self.payment_method_id.as_ref() == Some(&payment_method_id) {
                    return Ok(());
                }
                let event = SubscriptionEvent::SubscriptionPaymentMethodChanged {
                    from: self.payment_method_id.clone(),
                    to: payment_method_id,
                    at,
                };
                sink.write(event, self).await;
            }
            SubscriptionCommand::MarkPastDue {
                tenant,
                grace_period_ends_at,
            } => {
                self.changeable_by(&tenant)?;
                // The same failure reported twice (a provider retrying its webhook, say) is
                // one failure, even once its grace period has started to run out.
                if self.status == Some(SubscriptionStatus::PastDue)
                    && self.grace_period_ends_at == Some(grace_period_ends_at)
                {
                    return Ok(());
                }
                if grace_period_ends_at <= at {
                    return Err(SubscriptionError::GracePeriodInPast);
                }
                let event = SubscriptionEvent::SubscriptionPastDue {
                    grace_period_ends_at,
                    at,
                };
                sink.write(event, self).await;
            }
            SubscriptionCommand::MarkPaid { tenant } => {
                self.changeable_by(&tenant)?;
                if self.status == Some(SubscriptionStatus::PastDue) {
                    sink.write(SubscriptionEvent::SubscriptionReactivated { at }, self)
                        .await;
                }
            }
            SubscriptionCommand::CancelSubscription { tenant } => {
                self.owned_by(&tenant)?;
                if self.status == Some(SubscriptionStatus::Canceled) {
                    return Err(SubscriptionError::AlreadyCanceled);
                }
                sink.write(SubscriptionEvent::SubscriptionCanceled { at }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: SubscriptionEvent) {
        match event {
            SubscriptionEvent::SubscriptionStarted {
                id,
                tenant,
                customer_id,
                plan,
                payment_method_id,
                at,
            } => {
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.plan = Some(plan);
                self.payment_method_id = payment_method_id;
                self.status = Some(SubscriptionStatus::Active);
                self.started_at = Some(at);
            }
            SubscriptionEvent::SubscriptionPaymentMethodChanged { to, .. } => {
                self.payment_method_id = Some(to);
            }
            SubscriptionEvent::SubscriptionPastDue {
                grace_period_ends_at,
                ..
            } => {
                self.status = Some(SubscriptionStatus::PastDue);
                self.grace_period_ends_at = Some(grace_period_ends_at);
            }
            SubscriptionEvent::SubscriptionReactivated { .. } => {
                self.status = Some(SubscriptionStatus::Active);
                self.grace_period_ends_at = None;
            }
            // A canceled subscription has no grace period left to wait for.
            SubscriptionEvent::SubscriptionCanceled { at } => {
                self.status = Some(SubscriptionStatus::Canceled);
                self.grace_period_ends_at = None;
                self.canceled_at = Some(at);
            }
        }
    }
}
