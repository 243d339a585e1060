//! Payment methods: which one a request may act on, adding one a provider collected, making it
//! the default, moving a subscription to another, removing one.
//!
//! A customer's default payment method is its newest one that is not removed: adding one makes
//! it the default without another event, and removing the default falls back to the one before.

use cqrs_es::AggregateError;
use domain::id::{CustomerId, PaymentMethodId, SubscriptionId};
use domain::payment_method::{Card, PaymentMethod, PaymentMethodCommand, PaymentMethodError};
use domain::provider::Provider;
use domain::subscription::{Subscription, SubscriptionCommand};
use domain::tenant::Tenant;
use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::read_models::subscription_list::SubscriptionListProjection;
use projections::ClaimKind;

use crate::context::App;
use crate::customer_lock::CustomerLock;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::{command_error, is_claim};

pub const NOT_FOUND: &str = "Payment method not found";
pub const NO_ACTIVE_SUBSCRIPTION: &str = "Customer has no active subscription";

/// What a provider tells us of a payment method it holds for the customer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectedPaymentMethod {
    pub provider: Provider,
    /// `card`, or the provider's kind of method.
    pub payment_type: String,
    pub card: Option<Card>,
    /// The provider's id for it (Stripe's `pm_…`); `None` for the sandbox, which keeps nothing.
    pub provider_reference: Option<String>,
}

/// What adding came to.
#[derive(Debug)]
pub enum Added {
    /// Added now, as the customer's default.
    New(Box<PaymentMethod>),
    /// The provider's payment method, or this id, was added before: nothing changed.
    AlreadyAdded(PaymentMethodId),
}

impl App {
    /// The tenant's live (not removed) payment method `id` of customer `customer_id`; anything
    /// else, another customer's included, is "Payment method not found".
    /// Payment method `id` as commands see it, when `reachable` says the caller may act on it;
    /// anything else, a malformed id included, is "Payment method not found".
    async fn payment_method_where(
        &self,
        id: &str,
        reachable: impl FnOnce(&PaymentMethod) -> bool,
    ) -> Result<(PaymentMethodId, PaymentMethod), AppError> {
        let not_found = || AppError::not_found(NOT_FOUND);
        let id = PaymentMethodId::parse(id).map_err(|_| not_found())?;
        let method = self
            .payment_methods
            .current(id.as_str())
            .await
            .map_err(command_error::<PaymentMethod>)?;
        if reachable(&method) {
            Ok((id, method))
        } else {
            Err(not_found())
        }
    }

    pub(crate) async fn customers_payment_method(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
        id: &str,
    ) -> Result<PaymentMethod, AppError> {
        let (_, method) = self
            .payment_method_where(id, |method| {
                method.tenant.as_ref() == Some(tenant)
                    && method.customer_id.as_ref() == Some(customer_id)
                    && !method.is_removed()
            })
            .await?;
        Ok(method)
    }

    /// Adds `collected` to the customer as payment method `id`, makes it the default and moves
    /// the customer's live subscription to it. A provider payment method that was added already
    /// is not added again: the read model's unique index on provider references refuses the
    /// second, also when two deliveries of one webhook race.
    ///
    /// The add and the move are a recorded flow (`flows.rs`): if the process dies after the
    /// add and before the move, another instance (or this one restarted) finishes the move.
    pub async fn add_collected_payment_method(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        id: PaymentMethodId,
        collected: CollectedPaymentMethod,
    ) -> Result<Added, AppError> {
        let input = FlowInput::AddPaymentMethod {
            customer_id: customer_id.clone(),
            payment_method_id: id.clone(),
            collected: collected.clone(),
        };
        let customer_id = customer_id.clone();
        self.in_flow(metadata, input, |app, metadata| async move {
            app.add_as_default(&metadata, &customer_id, id, collected)
                .await
        })
        .await
    }

    pub(crate) async fn add_as_default(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        id: PaymentMethodId,
        collected: CollectedPaymentMethod,
    ) -> Result<Added, AppError> {
        let tenant = metadata.tenant().clone();
        if let Some(existing) = self.already_added(&tenant, &collected).await? {
            return Ok(Added::AlreadyAdded(existing));
        }
        let command = PaymentMethodCommand::AddPaymentMethod {
            id: id.clone(),
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            provider: collected.provider,
            payment_type: collected.payment_type.clone(),
            card: collected.card.clone(),
            provider_reference: collected.provider_reference.clone(),
        };
        match self
            .payment_methods
            .execute_new(id.as_str(), command, metadata)
            .await
        {
            Ok(_) => {}
            Err(AggregateError::UserError(PaymentMethodError::AlreadyExists)) => {
                return Ok(Added::AlreadyAdded(id));
            }
            Err(e) if is_claim(&e, ClaimKind::ProviderPaymentMethod) => {
                // Lost the race to another delivery of the same payment method.
                let existing = self.already_added(&tenant, &collected).await?;
                return Ok(Added::AlreadyAdded(existing.unwrap_or(id)));
            }
            Err(AggregateError::UserError(e)) => return Err(AppError::invalid(e.to_string())),
            Err(e) => return Err(AppError::internal("Failed to add payment method", e)),
        }
        self.make_default(metadata, customer_id, &id).await?;
        // Read back after the move, so the answer shows the subscription it is linked to.
        let method = self
            .payment_methods
            .current(id.as_str())
            .await
            .map_err(|e| AppError::internal("Failed to add payment method", e))?;
        Ok(Added::New(Box::new(method)))
    }

    /// Moves the customer's live subscription to `id` if `id` is (still) the customer's
    /// default. Run after an add, and again when a provider redelivers an event whose first
    /// delivery added the method but failed before the move: a method added since stays the
    /// default.
    pub async fn make_default(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        id: &PaymentMethodId,
    ) -> Result<(), AppError> {
        let methods =
            PaymentMethodListProjection::for_customer(&self.pool, metadata.tenant(), customer_id)
                .await?;
        // By when it was added, not by id: a sandbox card's id is chosen when its intent is
        // made, which may be long before the card is.
        let is_default = methods
            .iter()
            .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            .is_some_and(|m| &m.id == id);
        if is_default {
            self.move_live_subscription_to(metadata, customer_id, id)
                .await?;
        }
        Ok(())
    }

    /// The id of the provider's payment method when it was added already (and not removed).
    async fn already_added(
        &self,
        tenant: &Tenant,
        collected: &CollectedPaymentMethod,
    ) -> Result<Option<PaymentMethodId>, AppError> {
        let Some(reference) = &collected.provider_reference else {
            return Ok(None);
        };
        let existing = PaymentMethodListProjection::by_provider_reference(
            &self.pool,
            tenant,
            collected.provider.as_str(),
            reference,
        )
        .await?;
        Ok(existing.map(|m| m.id))
    }

    /// Moves the customer's live subscription, if it has one, to `payment_method_id`: what
    /// setting a new default payment method does.
    async fn move_live_subscription_to(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        payment_method_id: &PaymentMethodId,
    ) -> Result<(), AppError> {
        let live = SubscriptionListProjection::live_for_customer(
            &self.pool,
            metadata.tenant(),
            customer_id,
        )
        .await?;
        match live {
            Some(live) => {
                let lock = CustomerLock::take(
                    &self.lock_connections,
                    metadata.tenant(),
                    customer_id.as_str(),
                )
                .await?;
                let moved = self
                    .move_subscription(metadata, &live.id, payment_method_id)
                    .await;
                lock.end().await;
                moved
            }
            None => Ok(()),
        }
    }

    /// Points subscription `subscription_id` at `payment_method_id`: three writes to two
    /// aggregates, in the order that keeps "a payment method an active subscription points at
    /// is marked linked" true at every moment — link the new method, point the subscription at
    /// it, unlink the old one. A subscription canceled meanwhile refuses, and the new method is
    /// unlinked again.
    ///
    /// If the process dies after the link, the new method stays linked (only its removal is
    /// blocked); after the move, the old one does — until the same request runs again, which
    /// finds the subscription moved and unlinks the old method.
    async fn move_subscription(
        &self,
        metadata: &CommandMetadata,
        subscription_id: &SubscriptionId,
        payment_method_id: &PaymentMethodId,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        self.payment_methods
            .execute(
                payment_method_id.as_str(),
                PaymentMethodCommand::LinkPaymentMethod {
                    tenant: tenant.clone(),
                    subscription_id: subscription_id.clone(),
                },
                metadata,
            )
            .await
            .map_err(command_error::<PaymentMethod>)?;
        let before = self
            .subscriptions
            .current(subscription_id.as_str())
            .await
            .map_err(command_error::<Subscription>)?;
        let moved = self
            .subscriptions
            .execute(
                subscription_id.as_str(),
                SubscriptionCommand::ChangeSubscriptionPaymentMethod {
                    tenant: tenant.clone(),
                    payment_method_id: payment_method_id.clone(),
                },
                metadata,
            )
            .await;
        if let Err(error) = moved {
            // The subscription will not point at the new method: take its link back, or it
            // could never be removed.
            let _ = self
                .payment_methods
                .execute(
                    payment_method_id.as_str(),
                    PaymentMethodCommand::UnlinkPaymentMethod {
                        tenant,
                        subscription_id: subscription_id.clone(),
                    },
                    metadata,
                )
                .await;
            return Err(command_error::<Subscription>(error));
        }
        if let Some(old) = before
            .payment_method_id
            .filter(|old| old != payment_method_id)
        {
            self.payment_methods
                .execute(
                    old.as_str(),
                    PaymentMethodCommand::UnlinkPaymentMethod {
                        tenant,
                        subscription_id: subscription_id.clone(),
                    },
                    metadata,
                )
                .await
                .map_err(command_error::<PaymentMethod>)?;
        }
        Ok(())
    }

    /// Links one of the customer's payment methods to its active subscription: the
    /// subscription is charged to it from now on, and the method it replaces is free to be
    /// removed. A recorded flow (`flows.rs`), in the customer's turn: cut between its three
    /// writes, it is finished by another instance, or by this one restarted.
    pub async fn set_subscription_payment_method(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        payment_method_id: Option<&str>,
    ) -> Result<(), AppError> {
        let payment_method_id = payment_method_id
            .ok_or_else(|| AppError::invalid("paymentMethodId is required"))?
            .to_owned();
        let input = FlowInput::MoveSubscription {
            customer_id: customer_id.clone(),
            payment_method_id: payment_method_id.clone(),
        };
        let customer_id = customer_id.clone();
        self.in_flow(metadata, input, |app, metadata| async move {
            let tenant = metadata.tenant();
            let lock =
                CustomerLock::take(&app.lock_connections, tenant, customer_id.as_str()).await?;
            let moved = async {
                let method = app
                    .customers_payment_method(tenant, &customer_id, &payment_method_id)
                    .await?;
                let live =
                    SubscriptionListProjection::live_for_customer(&app.pool, tenant, &customer_id)
                        .await?
                        .ok_or_else(|| AppError::conflict(NO_ACTIVE_SUBSCRIPTION))?;
                let payment_method_id = method.id.ok_or_else(|| AppError::not_found(NOT_FOUND))?;
                app.move_subscription(&metadata, &live.id, &payment_method_id)
                    .await
            }
            .await;
            lock.end().await;
            moved
        })
        .await
    }

    /// Soft-deletes a payment method. A secret key reaches any of the tenant's; a portal
    /// session only its own customer's. One an active subscription is charged to is refused.
    pub async fn remove_payment_method(
        &self,
        metadata: &CommandMetadata,
        id: &str,
    ) -> Result<(), AppError> {
        let principal: &Principal = &metadata.principal;
        let (id, _) = self
            .payment_method_where(id, |method| {
                method.tenant.as_ref() == Some(&principal.tenant)
                    && method
                        .customer_id
                        .as_ref()
                        .is_some_and(|customer| principal.reaches_customer(customer.as_str()))
            })
            .await?;
        let command = PaymentMethodCommand::RemovePaymentMethod {
            tenant: principal.tenant.clone(),
        };
        self.payment_methods
            .execute(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<PaymentMethod>)?;
        Ok(())
    }
}
