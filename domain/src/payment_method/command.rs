use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::payment_method::Card;
use crate::provider::Provider;
use crate::tenant::Tenant;

/// What a caller can ask of a payment method. That the customer exists and belongs to the
/// tenant is checked by the caller, which loads it.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentMethodCommand {
    AddPaymentMethod {
        id: PaymentMethodId,
        tenant: Tenant,
        customer_id: CustomerId,
        provider: Provider,
        /// The provider's kind of method, such as `card`.
        payment_type: String,
        card: Option<Card>,
        /// The provider's own id for it, such as Stripe's `pm_…`.
        provider_reference: Option<String>,
    },
    /// Sent before the subscription points at this payment method.
    LinkPaymentMethod {
        tenant: Tenant,
        subscription_id: SubscriptionId,
    },
    /// Sent after the subscription stopped pointing at this payment method.
    UnlinkPaymentMethod {
        tenant: Tenant,
        subscription_id: SubscriptionId,
    },
    RemovePaymentMethod {
        tenant: Tenant,
    },
}

impl PaymentMethodCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            PaymentMethodCommand::AddPaymentMethod { tenant, .. }
            | PaymentMethodCommand::LinkPaymentMethod { tenant, .. }
            | PaymentMethodCommand::UnlinkPaymentMethod { tenant, .. }
            | PaymentMethodCommand::RemovePaymentMethod { tenant, .. } => tenant,
        }
    }
}
