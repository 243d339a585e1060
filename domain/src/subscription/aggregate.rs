use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::plan::Interval;
use crate::subscription::period::{period_end, period_start};
use crate::subscription::{
    PlanSnapshot, SubscriptionCommand, SubscriptionError, SubscriptionEvent, SubscriptionServices,
    SubscriptionStatus,
};
use crate::tenant::Tenant;

/// The most seats one subscription may have.
pub const MAX_QUANTITY: u32 = 10_000;

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
    /// Seats, for per-seat prices.
    #[serde(default)]
    pub quantity: u32,
    #[serde(default)]
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Where periods count from: the trial's end, or the start.
    #[serde(default)]
    pub billing_anchor: Option<DateTime<Utc>>,
    /// The paid period the subscription is in (0 is the first); during a trial, none.
    #[serde(default)]
    pub period_index: Option<u32>,
    #[serde(default)]
    pub current_period_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pub current_period_end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cancel_at_period_end: bool,
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

    /// The interval its plan bills in.
    fn interval(&self) -> Interval {
        self.plan
            .as_ref()
            .map(|plan| plan.interval)
            .unwrap_or_default()
    }

    /// The bounds of the paid period after the current one (or, in a trial, the first).
    pub fn next_period(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let anchor = self.billing_anchor?;
        let index = self.period_index.map_or(0, |i| i.saturating_add(1));
        Some((
            period_start(anchor, self.interval(), index),
            period_end(anchor, self.interval(), index),
        ))
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
        let at = services.clock.now_for(command.tenant());
        match command {
            SubscriptionCommand::StartSubscription {
                id,
                tenant,
                customer_id,
                plan,
                payment_method_id,
                quantity,
            } => {
                if self.exists() {
                    return Err(SubscriptionError::AlreadyExists);
                }
                let quantity = match quantity {
                    None => 1,
                    Some(n) => u32::try_from(n)
                        .ok()
                        .filter(|n| (1..=MAX_QUANTITY).contains(n))
                        .ok_or(SubscriptionError::InvalidQuantity)?,
                };
                // A trial is the first period, unpaid; paid periods count from its end.
                let trial_ends_at =
                    (plan.trial_days > 0).then(|| at + Duration::days(i64::from(plan.trial_days)));
                let current_period_end =
                    trial_ends_at.unwrap_or_else(|| period_end(at, plan.interval, 0));
                let event = SubscriptionEvent::SubscriptionStarted {
                    id,
                    tenant,
                    customer_id,
                    plan,
                    payment_method_id,
                    quantity,
                    trial_ends_at,
                    current_period_start: Some(at),
                    current_period_end: Some(current_period_end),
                    at,
                };
                sink.write(event, self).await;
            }
            SubscriptionCommand::RenewSubscription {
                tenant,
                period_start,
            } => {
                self.changeable_by(&tenant)?;
                let current_end = self.current_period_end.ok_or(SubscriptionError::NotDue)?;
                if period_start < current_end {
                    // That period began already: a renewal asked twice is one renewal.
                    return Ok(());
                }
                if period_start > current_end {
                    return Err(SubscriptionError::NotTheNextPeriod);
                }
                if at < current_end {
                    return Err(SubscriptionError::NotDue);
                }
                if self.cancel_at_period_end {
                    return Err(SubscriptionError::EndsAtPeriodEnd);
                }
                let (period_start, period_end) =
                    self.next_period().ok_or(SubscriptionError::NotDue)?;
                let event = SubscriptionEvent::SubscriptionRenewed {
                    period_start,
                    period_end,
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
            SubscriptionCommand::CancelSubscription {
                tenant,
                at_period_end,
            } => {
                self.owned_by(&tenant)?;
                if self.status == Some(SubscriptionStatus::Canceled) {
                    return Err(SubscriptionError::AlreadyCanceled);
                }
                match (at_period_end, self.current_period_end) {
                    // Asked twice, it is scheduled once.
                    (true, Some(cancel_at)) if cancel_at > at && self.cancel_at_period_end => {}
                    (true, Some(cancel_at)) if cancel_at > at => {
                        let event =
                            SubscriptionEvent::SubscriptionCancelScheduled { cancel_at, at };
                        sink.write(event, self).await;
                    }
                    // Its period is over (the scheduler's call): it ends now.
                    _ => {
                        sink.write(SubscriptionEvent::SubscriptionCanceled { at }, self)
                            .await;
                    }
                }
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
                quantity,
                trial_ends_at,
                current_period_start,
                current_period_end,
                at,
            } => {
                let anchor = trial_ends_at.unwrap_or(at);
                self.current_period_start = Some(current_period_start.unwrap_or(at));
                self.current_period_end = Some(
                    current_period_end.unwrap_or_else(|| period_end(anchor, plan.interval, 0)),
                );
                self.billing_anchor = Some(anchor);
                self.period_index = trial_ends_at.is_none().then_some(0);
                self.trial_ends_at = trial_ends_at;
                self.quantity = quantity;
                self.id = Some(id);
                self.tenant = Some(tenant);
                self.customer_id = Some(customer_id);
                self.plan = Some(plan);
                self.payment_method_id = payment_method_id;
                self.status = Some(SubscriptionStatus::Active);
                self.started_at = Some(at);
            }
            SubscriptionEvent::SubscriptionRenewed {
                period_start,
                period_end,
                ..
            } => {
                self.period_index = Some(self.period_index.map_or(0, |i| i.saturating_add(1)));
                self.current_period_start = Some(period_start);
                self.current_period_end = Some(period_end);
            }
            SubscriptionEvent::SubscriptionCancelScheduled { .. } => {
                self.cancel_at_period_end = true;
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
                self.cancel_at_period_end = false;
                self.canceled_at = Some(at);
            }
        }
    }
}
