use chrono::{DateTime, Utc};

use crate::id::{CustomerId, PaymentMethodId, SubscriptionId};
use crate::subscription::PlanSnapshot;
use crate::tenant::Tenant;

/// What a caller can ask of a subscription. That the customer, plan and payment method exist
/// and belong to the tenant is checked by the caller, which loads them; the subscription
/// guards its own life.
// Commands are short-lived values, built once and handled once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionCommand {
    StartSubscription {
        id: SubscriptionId,
        tenant: Tenant,
        customer_id: CustomerId,
        plan: PlanSnapshot,
        payment_method_id: Option<PaymentMethodId>,
        /// Seats, for per-seat prices; none is one.
        quantity: Option<i64>,
    },
    /// The period that started at `period_start` (the current one's end) begins: what the
    /// scheduler asks once the current period is over. Asked again for a period that began
    /// already, it changes nothing.
    RenewSubscription {
        tenant: Tenant,
        period_start: DateTime<Utc>,
    },
    /// Link the new payment method before, and unlink the old one after: see
    /// [`crate::payment_method::PaymentMethod`].
    ChangeSubscriptionPaymentMethod {
        tenant: Tenant,
        payment_method_id: PaymentMethodId,
    },
    /// A payment failed. Again while past due, it moves the end of the grace period.
    MarkPastDue {
        tenant: Tenant,
        grace_period_ends_at: DateTime<Utc>,
    },
    /// The overdue payment went through: a past-due subscription is active again.
    MarkPaid { tenant: Tenant },
    /// At once, or (`at_period_end`) when the current period ends: the scheduler cancels it
    /// then, and it is not renewed.
    CancelSubscription { tenant: Tenant, at_period_end: bool },
}

impl SubscriptionCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            SubscriptionCommand::StartSubscription { tenant, .. }
            | SubscriptionCommand::RenewSubscription { tenant, .. }
            | SubscriptionCommand::ChangeSubscriptionPaymentMethod { tenant, .. }
            | SubscriptionCommand::MarkPastDue { tenant, .. }
            | SubscriptionCommand::MarkPaid { tenant, .. }
            | SubscriptionCommand::CancelSubscription { tenant, .. } => tenant,
        }
    }
}
