//! A payment method as the API reaches it: which one a request may act on, and how a
//! payment-method command's failure is answered.

use cqrs_es::AggregateError;
use domain::id::PaymentMethodId;
use domain::payment_method::{PaymentMethod, PaymentMethodError};
use domain::tenant::Tenant;

use crate::error::ApiError;
use crate::state::AppState;

pub(crate) const PAYMENT_METHOD_NOT_FOUND: &str = "Payment method not found";

/// An answer for a payment-method command that was refused or failed.
pub(crate) fn payment_method_error(error: AggregateError<PaymentMethodError>) -> ApiError {
    match error {
        AggregateError::UserError(
            e @ (PaymentMethodError::NotFound | PaymentMethodError::Removed),
        ) => ApiError::not_found(e.to_string()),
        AggregateError::UserError(e @ PaymentMethodError::LinkedToActiveSubscription) => {
            ApiError::conflict(e.to_string())
        }
        AggregateError::UserError(e) => ApiError::bad_request(e.to_string()),
        AggregateError::AggregateConflict => {
            ApiError::conflict("The payment method was changed by concurrent requests; retry")
        }
        other => ApiError::internal("Failed to update payment method", other),
    }
}

/// The tenant's live (not removed) payment method `id` of customer `customer_id`; anything
/// else, another customer's included, is "Payment method not found".
pub(crate) async fn customers_payment_method(
    state: &AppState,
    tenant: &Tenant,
    customer_id: &str,
    id: &str,
) -> Result<PaymentMethod, ApiError> {
    let not_found = || ApiError::not_found(PAYMENT_METHOD_NOT_FOUND);
    let id = PaymentMethodId::parse(id).map_err(|_| not_found())?;
    let method = state
        .payment_methods
        .current(id.as_str())
        .await
        .map_err(payment_method_error)?;
    let owned = method.tenant.as_ref() == Some(tenant)
        && method.customer_id.as_ref().map(|c| c.as_str()) == Some(customer_id)
        && !method.is_removed();
    if owned {
        Ok(method)
    } else {
        Err(not_found())
    }
}
