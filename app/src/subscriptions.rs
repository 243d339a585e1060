//! Subscriptions: a customer on a plan, charged to one of its payment methods.
//!
//! A subscription and its payment method are two aggregates written one after the other, in
//! the order the PaymentMethod aggregate asks for: the method is linked before the
//! subscription points at it, and unlinked only after the subscription stopped pointing at it
//! (canceled). So a payment method an active subscription charges can never be removed.

use cqrs_es::AggregateError;
use domain::id::{CustomerId, PaymentMethodId, PlanId, SubscriptionId};
use domain::payment_method::{PaymentMethod, PaymentMethodCommand};
use domain::subscription::{Subscription, SubscriptionCommand, SubscriptionError, MAX_QUANTITY};
use projections::read_models::customer_list::CustomerListProjection;
use projections::read_models::subscription_list::SubscriptionListProjection;

use crate::context::App;
use crate::customer_lock::CustomerLock;
use crate::customers::NOT_FOUND as CUSTOMER_NOT_FOUND;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::ids::{parse_id, required_id};
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::{command_error, ALREADY_SUBSCRIBED};

pub const NOT_FOUND: &str = "Subscription not found";
pub const PLAN_NOT_FOUND: &str = "Plan not found";

/// What starting a subscription takes, as the caller named it.
#[derive(Debug, Clone, Default)]
pub struct NewSubscription {
    pub customer_id: Option<String>,
    pub plan_id: Option<String>,
    pub payment_method_id: Option<String>,
    /// Seats, for per-seat prices; none is one.
    pub quantity: Option<i64>,
}

/// The subscription as a command left it, or "not found" for one never started.
fn started(subscription: Subscription) -> Result<Subscription, AppError> {
    if subscription.plan.is_some() && subscription.id.is_some() {
        Ok(subscription)
    } else {
        Err(AppError::not_found(NOT_FOUND))
    }
}

impl App {
    /// Starts a subscription of a customer to a plan, optionally charged to one of the
    /// customer's payment methods. A customer has at most one subscription that is not
    /// canceled. The customer's delete waits for this start, and this start for its delete.
    ///
    /// Steps: link the payment method, then start the subscription; a start that fails takes
    /// the link back. The flow is recorded (`flows.rs`): if the process dies between the link
    /// and the start, another instance (or this one restarted) runs it again, and the same
    /// subscription (its id is the flow's) starts.
    pub async fn start_subscription(
        &self,
        metadata: &CommandMetadata,
        new: NewSubscription,
    ) -> Result<Subscription, AppError> {
        let customer_id: CustomerId = required_id(new.customer_id.as_deref(), "customerId")?;
        let plan_id: PlanId = required_id(new.plan_id.as_deref(), "planId")?;
        let payment_method_id = new
            .payment_method_id
            .as_deref()
            .map(parse_id::<PaymentMethodId>)
            .transpose()?;
        let quantity = new.quantity;
        if quantity.is_some_and(|n| !(1..=i64::from(MAX_QUANTITY)).contains(&n)) {
            return Err(command_error::<Subscription>(AggregateError::UserError(
                SubscriptionError::InvalidQuantity,
            )));
        }
        let input = FlowInput::StartSubscription {
            customer_id: customer_id.clone(),
            plan_id: plan_id.to_string(),
            payment_method_id: payment_method_id.clone(),
            quantity,
        };
        self.in_flow(metadata, input, |app, metadata| async move {
            let lock = CustomerLock::take(
                &app.lock_connections,
                metadata.tenant(),
                customer_id.as_str(),
            )
            .await?;
            let started = app
                .start_while_locked(&metadata, customer_id, plan_id, payment_method_id, quantity)
                .await;
            lock.end().await;
            let subscription = started?;
            app.bill_first_period(&metadata, subscription).await
        })
        .await
    }

    /// Invoices and charges the first paid period of a subscription that just started, unless
    /// it starts with a trial (the trial's end renews it into its first paid period). Answers
    /// the subscription as the charge left it: `past_due` when it failed.
    async fn bill_first_period(
        &self,
        metadata: &CommandMetadata,
        subscription: Subscription,
    ) -> Result<Subscription, AppError> {
        let (Some(id), Some(period_start)) =
            (subscription.id.clone(), subscription.current_period_start)
        else {
            return Ok(subscription);
        };
        if subscription.trial_ends_at.is_some() {
            return Ok(subscription);
        }
        self.bill_in_flow(metadata, &id, period_start, None).await?;
        self.subscriptions
            .current(id.as_str())
            .await
            .map_err(command_error::<Subscription>)
            .and_then(started)
    }

    async fn start_while_locked(
        &self,
        metadata: &CommandMetadata,
        customer_id: CustomerId,
        plan_id: PlanId,
        payment_method_id: Option<PaymentMethodId>,
        quantity: Option<i64>,
    ) -> Result<Subscription, AppError> {
        let tenant = metadata.tenant().clone();
        CustomerListProjection::get(&self.pool, &tenant, customer_id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(CUSTOMER_NOT_FOUND))?;
        let plan = self
            .plans
            .current(plan_id.as_str())
            .await
            .map_err(|e| AppError::internal("Failed to update subscription", e))?
            .snapshot_for(&tenant)
            .ok_or_else(|| AppError::not_found(PLAN_NOT_FOUND))?;
        if let Some(id) = &payment_method_id {
            self.customers_payment_method(&tenant, &customer_id, id.as_str())
                .await?;
        }
        let id: SubscriptionId = metadata.new_id("subscription");
        // The log's claim decides races; asking first answers the common case without
        // touching the payment method, whose link the customer's live subscription holds.
        if let Some(live) =
            SubscriptionListProjection::live_for_customer(&self.pool, &tenant, &customer_id).await?
        {
            // This flow's own subscription, started by an earlier run of it.
            if live.id == id {
                return self
                    .subscriptions
                    .current(id.as_str())
                    .await
                    .map_err(command_error::<Subscription>)
                    .and_then(started);
            }
            return Err(AppError::conflict(ALREADY_SUBSCRIBED));
        }

        if let Some(payment_method_id) = &payment_method_id {
            self.payment_methods
                .execute(
                    payment_method_id.as_str(),
                    PaymentMethodCommand::LinkPaymentMethod {
                        tenant: tenant.clone(),
                        subscription_id: id.clone(),
                    },
                    metadata,
                )
                .await
                .map_err(command_error::<PaymentMethod>)?;
        }
        let command = SubscriptionCommand::StartSubscription {
            id: id.clone(),
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            plan,
            payment_method_id: payment_method_id.clone(),
            quantity,
        };
        match self
            .subscriptions
            .execute_new(id.as_str(), command, metadata)
            .await
        {
            Ok(subscription) => started(subscription),
            Err(e) => {
                if let Some(payment_method_id) = &payment_method_id {
                    self.release_payment_method(metadata, payment_method_id, &id, &customer_id)
                        .await;
                }
                Err(command_error::<Subscription>(e))
            }
        }
    }

    /// Takes back the link made for a subscription that did not start. When it lost a race to
    /// another start for the same customer and the winner charges the same payment method,
    /// our link replaced the winner's: the link goes back to the winner instead of away. The
    /// caller answers with the start's own error, so a failure here is logged rather than
    /// returned: it leaves the method linked to nothing, which only blocks its removal.
    async fn release_payment_method(
        &self,
        metadata: &CommandMetadata,
        payment_method_id: &PaymentMethodId,
        failed: &SubscriptionId,
        customer_id: &CustomerId,
    ) {
        let tenant = metadata.tenant().clone();
        let winner =
            SubscriptionListProjection::live_for_customer(&self.pool, &tenant, customer_id).await;
        let command = match winner {
            Ok(Some(live))
                if live.payment_method_id.as_deref() == Some(payment_method_id.as_str()) =>
            {
                PaymentMethodCommand::LinkPaymentMethod {
                    tenant,
                    subscription_id: live.id,
                }
            }
            Ok(_) => PaymentMethodCommand::UnlinkPaymentMethod {
                tenant,
                subscription_id: failed.clone(),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot release a payment method after a failed start");
                return;
            }
        };
        if let Err(e) = self
            .payment_methods
            .execute(payment_method_id.as_str(), command, metadata)
            .await
        {
            tracing::warn!(error = %e, "cannot release a payment method after a failed start");
        }
    }

    /// The tenant's subscription `id`.
    pub async fn subscription(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Subscription, AppError> {
        let id: SubscriptionId = parse_id(id)?;
        let subscription = self
            .subscriptions
            .current(id.as_str())
            .await
            .map_err(command_error::<Subscription>)?;
        if subscription.tenant.as_ref() != Some(&principal.tenant) {
            return Err(AppError::not_found(NOT_FOUND));
        }
        started(subscription)
    }

    /// Cancels subscription `id` at once; its payment method is free to be removed afterwards.
    /// The cancel and the unlink are a recorded flow (`flows.rs`): cut between them, it is
    /// finished by another instance, or by this one restarted.
    pub async fn cancel_subscription(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<Subscription, AppError> {
        let id: SubscriptionId = parse_id(id)?;
        let input = FlowInput::CancelSubscription {
            subscription_id: id.clone(),
        };
        self.in_flow(metadata, input, |app, metadata| async move {
            app.cancel_subscription_by_id(&metadata, &id)
                .await
                .and_then(started)
        })
        .await
    }

    /// Sets subscription `id` to end when its current period ends: it is not renewed, and the
    /// scheduler cancels it then (and frees its payment method). Asked twice, it is set once.
    pub async fn cancel_subscription_at_period_end(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<Subscription, AppError> {
        let id: SubscriptionId = parse_id(id)?;
        self.subscriptions
            .execute(
                id.as_str(),
                SubscriptionCommand::CancelSubscription {
                    tenant: metadata.tenant().clone(),
                    at_period_end: true,
                },
                metadata,
            )
            .await
            .map_err(command_error::<Subscription>)
            .and_then(started)
    }

    /// Cancels subscription `id` of the caller's tenant, then unlinks its payment method, and
    /// returns it canceled. Canceling a canceled subscription is a 409; it still retries the
    /// unlink, so that a cancel whose unlink failed (or whose process died before it) heals
    /// when the caller tries again.
    pub(crate) async fn cancel_subscription_by_id(
        &self,
        metadata: &CommandMetadata,
        id: &SubscriptionId,
    ) -> Result<Subscription, AppError> {
        let tenant = metadata.tenant().clone();
        let canceled = self
            .subscriptions
            .execute(
                id.as_str(),
                SubscriptionCommand::CancelSubscription {
                    tenant: tenant.clone(),
                    at_period_end: false,
                },
                metadata,
            )
            .await;
        let (subscription, outcome) = match canceled {
            Ok(subscription) => (subscription.clone(), Ok(subscription)),
            Err(AggregateError::UserError(SubscriptionError::AlreadyCanceled)) => {
                let subscription = self
                    .subscriptions
                    .current(id.as_str())
                    .await
                    .map_err(command_error::<Subscription>)?;
                let refusal = command_error::<Subscription>(AggregateError::UserError(
                    SubscriptionError::AlreadyCanceled,
                ));
                (subscription, Err(refusal))
            }
            Err(e) => return Err(command_error::<Subscription>(e)),
        };
        if let Some(payment_method_id) = &subscription.payment_method_id {
            self.payment_methods
                .execute(
                    payment_method_id.as_str(),
                    PaymentMethodCommand::UnlinkPaymentMethod {
                        tenant,
                        subscription_id: id.clone(),
                    },
                    metadata,
                )
                .await
                .map_err(command_error::<PaymentMethod>)?;
        }
        outcome
    }
}
