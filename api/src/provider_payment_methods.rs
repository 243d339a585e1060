//! Adding a payment method a provider collected (a sandbox card, a Stripe SetupIntent's card, a
//! Dodo mandate) to a customer, the same way for every provider: added once, then the
//! customer's default, and the one its live subscription is charged to.
//!
//! A customer's default payment method is its newest one that is not removed: adding one makes
//! it the default without another event, and removing the default falls back to the one before.

use cqrs_es::AggregateError;
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::{Card, PaymentMethod, PaymentMethodCommand, PaymentMethodError};
use domain::provider::Provider;
use domain::tenant::Tenant;
use projections::payment_method_list::PaymentMethodListProjection;
use projections::{ClaimConflict, ClaimKind};

use crate::commands::CommandMetadata;
use crate::error::ApiError;
use crate::state::AppState;
use crate::subscription_moves::move_live_subscription_to;

/// What a provider tells us of a payment method it holds for the customer.
#[derive(Debug, Clone, PartialEq)]
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

/// Adds `collected` to the customer as payment method `id`, makes it the default and moves the
/// customer's live subscription to it. A provider payment method that was added already is
/// not added again: the read model's unique index on provider references refuses the second,
/// also when two deliveries of one webhook race.
pub async fn add_collected_payment_method(
    state: &AppState,
    metadata: &CommandMetadata,
    customer_id: &CustomerId,
    id: PaymentMethodId,
    collected: CollectedPaymentMethod,
) -> Result<Added, ApiError> {
    let tenant = metadata.principal.tenant.clone();
    if let Some(existing) = already_added(state, &tenant, &collected).await? {
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
    match state
        .payment_methods
        .execute_new(id.as_str(), command, metadata)
        .await
    {
        Ok(_) => {}
        Err(AggregateError::UserError(PaymentMethodError::AlreadyExists)) => {
            return Ok(Added::AlreadyAdded(id));
        }
        Err(AggregateError::UnexpectedError(e))
            if matches!(
                e.downcast_ref::<ClaimConflict>(),
                Some(ClaimConflict {
                    kind: ClaimKind::ProviderPaymentMethod
                })
            ) =>
        {
            // Lost the race to another delivery of the same payment method.
            let existing = already_added(state, &tenant, &collected).await?;
            return Ok(Added::AlreadyAdded(existing.unwrap_or(id)));
        }
        Err(AggregateError::UserError(e)) => return Err(ApiError::bad_request(e.to_string())),
        Err(e) => return Err(ApiError::internal("Failed to add payment method", e)),
    }
    make_default(state, metadata, &tenant, customer_id, &id).await?;
    // Read back after the move, so the answer shows the subscription it is linked to.
    let method = state
        .payment_methods
        .current(id.as_str())
        .await
        .map_err(|e| ApiError::internal("Failed to add payment method", e))?;
    Ok(Added::New(Box::new(method)))
}

/// Moves the customer's live subscription to `id` if `id` is (still) the customer's default.
/// Run after an add, and again when a provider redelivers an event whose first delivery added
/// the method but failed before the move: a method added since stays the default.
pub async fn make_default(
    state: &AppState,
    metadata: &CommandMetadata,
    tenant: &Tenant,
    customer_id: &CustomerId,
    id: &PaymentMethodId,
) -> Result<(), ApiError> {
    let methods =
        PaymentMethodListProjection::for_customer(&state.pool, &tenant.key(), customer_id.as_str())
            .await?;
    // By when it was added, not by id: a sandbox card's id is chosen when its intent is made,
    // which may be long before the card is.
    let is_default = methods
        .iter()
        .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
        .is_some_and(|m| m.id == id.as_str());
    if is_default {
        move_live_subscription_to(state, metadata, tenant, customer_id.as_str(), id).await?;
    }
    Ok(())
}

/// The id of the provider's payment method when it was added already (and not removed).
async fn already_added(
    state: &AppState,
    tenant: &Tenant,
    collected: &CollectedPaymentMethod,
) -> Result<Option<PaymentMethodId>, ApiError> {
    let Some(reference) = &collected.provider_reference else {
        return Ok(None);
    };
    let existing = PaymentMethodListProjection::by_provider_reference(
        &state.pool,
        &tenant.key(),
        collected.provider.as_str(),
        reference,
    )
    .await?;
    Ok(existing.and_then(|m| PaymentMethodId::parse(&m.id).ok()))
}
