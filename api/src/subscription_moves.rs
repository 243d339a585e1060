//! Moving a subscription to another payment method: three writes to two aggregates, in the
//! order that keeps "a payment method an active subscription points at is marked linked" true
//! at every moment (see the PaymentMethod aggregate): link the new method, point the
//! subscription at it, unlink the old one.

use domain::id::{PaymentMethodId, SubscriptionId};
use domain::payment_method::PaymentMethodCommand;
use domain::subscription::SubscriptionCommand;
use domain::tenant::Tenant;
use projections::subscription_list::SubscriptionListProjection;

use crate::commands::CommandMetadata;
use crate::error::ApiError;
use crate::payment_methods::payment_method_error;
use crate::routes::subscriptions::subscription_error;
use crate::state::AppState;

pub(crate) const NO_ACTIVE_SUBSCRIPTION: &str = "Customer has no active subscription";

/// Points subscription `subscription_id` at `payment_method_id`. A subscription that is
/// canceled meanwhile refuses, and the new method is unlinked again.
pub(crate) async fn move_subscription(
    state: &AppState,
    metadata: &CommandMetadata,
    subscription_id: &SubscriptionId,
    payment_method_id: &PaymentMethodId,
) -> Result<(), ApiError> {
    let tenant = metadata.principal.tenant.clone();
    state
        .payment_methods
        .execute(
            payment_method_id.as_str(),
            PaymentMethodCommand::LinkPaymentMethod {
                tenant: tenant.clone(),
                subscription_id: subscription_id.clone(),
            },
            metadata,
        )
        .await
        .map_err(payment_method_error)?;
    let before = state
        .subscriptions
        .current(subscription_id.as_str())
        .await
        .map_err(subscription_error)?;
    let moved = state
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
        // The subscription will not point at the new method: take its link back, or it could
        // never be removed.
        let _ = state
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
        return Err(subscription_error(error));
    }
    if let Some(old) = before
        .payment_method_id
        .filter(|old| old != payment_method_id)
    {
        state
            .payment_methods
            .execute(
                old.as_str(),
                PaymentMethodCommand::UnlinkPaymentMethod {
                    tenant,
                    subscription_id: subscription_id.clone(),
                },
                metadata,
            )
            .await
            .map_err(payment_method_error)?;
    }
    Ok(())
}

/// Moves the customer's live subscription, if it has one, to `payment_method_id`: what setting
/// a new default payment method does. Without a live subscription there is nothing to move.
pub async fn move_live_subscription_to(
    state: &AppState,
    metadata: &CommandMetadata,
    tenant: &Tenant,
    customer_id: &str,
    payment_method_id: &PaymentMethodId,
) -> Result<(), ApiError> {
    let live =
        SubscriptionListProjection::live_for_customer(&state.pool, &tenant.key(), customer_id)
            .await?;
    let Some(live) = live else {
        return Ok(());
    };
    let subscription_id = SubscriptionId::parse(&live.id)
        .map_err(|e| ApiError::internal("Failed to update subscription", e))?;
    move_subscription(state, metadata, &subscription_id, payment_method_id).await
}
