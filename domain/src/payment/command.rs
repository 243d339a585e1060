use crate::currency::Currency;
use crate::id::{CustomerId, InvoiceId, PaymentId, PaymentMethodId};
use crate::payment::PaymentKind;
use crate::provider::Provider;
use crate::tenant::Tenant;
use crate::top_up::TopUpPurchase;

/// What a caller can ask of a payment. That the customer, invoice, payment method and
/// refunded payment exist and belong to the tenant is checked by the caller, which loads them.
#[derive(Debug, Clone, PartialEq)]
// Commands are short-lived values, built once and handled once: boxing the large variant
// would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum PaymentCommand {
    /// Records the payment `pending`, before the provider is asked, so that a crash in
    /// between leaves a payment to settle rather than a charge nobody knows about.
    Initiate {
        id: PaymentId,
        tenant: Tenant,
        customer_id: CustomerId,
        invoice_id: Option<InvoiceId>,
        payment_method_id: Option<PaymentMethodId>,
        provider: Provider,
        kind: PaymentKind,
        /// Positive, also for a refund: the kind gives the sign it is stored with.
        amount_cents: i64,
        currency: Currency,
        /// The charge a refund gives back; only for a refund.
        refunded_payment_id: Option<PaymentId>,
        /// What the charge buys, when it is a top-up purchase: its amount must be the
        /// purchase's.
        top_up: Option<TopUpPurchase>,
    },
    /// The provider's answer, or its webhook: whichever arrives first settles the payment.
    Settle {
        tenant: Tenant,
        outcome: SettlementOutcome,
    },
}

/// What the provider said about a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettlementOutcome {
    Succeeded {
        /// The provider's own id for it, such as a Stripe PaymentIntent's `pi_…`.
        provider_reference: Option<String>,
    },
    Failed {
        /// Shown to the customer: "Your card was declined."
        message: String,
        /// The provider's code, such as `card_declined`, when it gives one.
        code: Option<String>,
    },
}

impl PaymentCommand {
    /// The tenant asking: whose clock stamps the command's events.
    pub fn tenant(&self) -> &Tenant {
        match self {
            PaymentCommand::Initiate { tenant, .. } | PaymentCommand::Settle { tenant, .. } => {
                tenant
            }
        }
    }
}
