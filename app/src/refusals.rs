//! One mapping from a command's failure to the caller's error, for every aggregate. A claim
//! conflict from the event store (an append that broke a rule guarded across aggregates by a
//! read model's unique index) becomes the domain's refusal here, and only here.

use cqrs_es::{Aggregate, AggregateError};
use domain::credit::{CreditError, CreditLedger};
use domain::customer::{Customer, CustomerError};
use domain::invoice::{Invoice, InvoiceError};
use domain::organization::{Organization, OrganizationError};
use domain::payment::{Payment, PaymentError};
use domain::payment_method::{PaymentMethod, PaymentMethodError};
use domain::plan::{Plan, PlanError};
use domain::subscription::{Subscription, SubscriptionError};
use domain::top_up::{TopUp, TopUpError};
use projections::{ClaimConflict, ClaimKind};

use crate::error::AppError;

pub const ALREADY_SUBSCRIBED: &str = "Customer already has an active subscription";
pub const ALREADY_IN_ORGANIZATION: &str = "Customer already belongs to an organization";

/// How an aggregate's command failures reach the caller.
pub trait Refusals: Aggregate {
    /// A rule of the aggregate refused the command.
    fn refusal(error: Self::Error) -> AppError;
    /// The message of a failure that is ours, not the caller's.
    fn failure() -> &'static str;
    /// The message when concurrent writers outlasted the command runner's retries.
    fn changed_concurrently() -> &'static str;
    /// The refusal a claim stands for, when this aggregate's append broke one.
    fn claim_refusal(_kind: ClaimKind) -> Option<AppError> {
        None
    }
}

/// The caller's error for a command of `A` that failed.
pub fn command_error<A: Refusals>(error: AggregateError<A::Error>) -> AppError {
    match error {
        AggregateError::UserError(e) => A::refusal(e),
        AggregateError::AggregateConflict => AppError::conflict(A::changed_concurrently()),
        AggregateError::UnexpectedError(e) => match claim_of(&*e).and_then(A::claim_refusal) {
            Some(refusal) => refusal,
            None => AppError::internal(A::failure(), e),
        },
        other => AppError::internal(A::failure(), other),
    }
}

/// The claim an append broke, if that is why it failed.
pub fn claim_of(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<ClaimKind> {
    error.downcast_ref::<ClaimConflict>().map(|c| c.kind)
}

/// Whether `error` is the event store refusing claim `kind`.
pub fn is_claim<E>(error: &AggregateError<E>, kind: ClaimKind) -> bool
where
    E: std::error::Error,
{
    matches!(error, AggregateError::UnexpectedError(e) if claim_of(&**e) == Some(kind))
}

impl Refusals for Customer {
    fn refusal(error: CustomerError) -> AppError {
        let message = error.to_string();
        match error {
            CustomerError::EmailRequired
            | CustomerError::InvalidEmail
            | CustomerError::InvalidField { .. } => AppError::invalid(message),
            CustomerError::EmailTaken
            | CustomerError::EmailTakenByAnother
            | CustomerError::ExternalIdTaken
            | CustomerError::AlreadyExists => AppError::conflict(message),
            CustomerError::NotFound | CustomerError::AlreadyDeleted => AppError::not_found(message),
            CustomerError::Unavailable(detail) => AppError::internal(Self::failure(), detail),
        }
    }

    fn failure() -> &'static str {
        "Failed to update customer"
    }

    fn changed_concurrently() -> &'static str {
        "The customer was changed by concurrent requests; retry the request"
    }

    fn claim_refusal(kind: ClaimKind) -> Option<AppError> {
        match kind {
            ClaimKind::Email => Some(Self::refusal(CustomerError::EmailTakenByAnother)),
            ClaimKind::ExternalId => Some(Self::refusal(CustomerError::ExternalIdTaken)),
            // Customer appends write no other aggregate's read models.
            _ => None,
        }
    }
}

impl Refusals for Subscription {
    fn refusal(error: SubscriptionError) -> AppError {
        let message = error.to_string();
        match error {
            SubscriptionError::NotFound => AppError::not_found(message),
            SubscriptionError::Canceled
            | SubscriptionError::AlreadyCanceled
            | SubscriptionError::AlreadyExists
            | SubscriptionError::NotDue
            | SubscriptionError::NotTheNextPeriod
            | SubscriptionError::EndsAtPeriodEnd => AppError::conflict(message),
            SubscriptionError::GracePeriodInPast | SubscriptionError::InvalidQuantity => {
                AppError::invalid(message)
            }
        }
    }

    fn failure() -> &'static str {
        "Failed to update subscription"
    }

    fn changed_concurrently() -> &'static str {
        "The subscription was changed by concurrent requests; retry the request"
    }

    fn claim_refusal(kind: ClaimKind) -> Option<AppError> {
        (kind == ClaimKind::LiveSubscription).then(|| AppError::conflict(ALREADY_SUBSCRIBED))
    }
}

impl Refusals for PaymentMethod {
    fn refusal(error: PaymentMethodError) -> AppError {
        let message = error.to_string();
        match error {
            PaymentMethodError::NotFound | PaymentMethodError::Removed => {
                AppError::not_found(message)
            }
            PaymentMethodError::LinkedToActiveSubscription => AppError::conflict(message),
            PaymentMethodError::InvalidCardExpiry | PaymentMethodError::AlreadyExists => {
                AppError::invalid(message)
            }
        }
    }

    fn failure() -> &'static str {
        "Failed to update payment method"
    }

    fn changed_concurrently() -> &'static str {
        "The payment method was changed by concurrent requests; retry"
    }
}

impl Refusals for Plan {
    fn refusal(error: PlanError) -> AppError {
        let message = error.to_string();
        match error {
            PlanError::AlreadyExists => AppError::conflict(message),
            _ => AppError::invalid(message),
        }
    }

    fn failure() -> &'static str {
        "Failed to create plan"
    }

    fn changed_concurrently() -> &'static str {
        "The plan was changed by concurrent requests; retry the request"
    }
}

impl Refusals for TopUp {
    fn refusal(error: TopUpError) -> AppError {
        let message = error.to_string();
        match error {
            TopUpError::AlreadyExists => AppError::conflict(message),
            TopUpError::NotFound => AppError::not_found(message),
            _ => AppError::invalid(message),
        }
    }

    fn failure() -> &'static str {
        "Failed to create top-up"
    }

    fn changed_concurrently() -> &'static str {
        "The top-up was changed by concurrent requests; retry the request"
    }
}

impl Refusals for Organization {
    fn refusal(error: OrganizationError) -> AppError {
        let message = error.to_string();
        match error {
            OrganizationError::NotFound => AppError::not_found(message),
            OrganizationError::NameRequired => AppError::invalid(message),
            OrganizationError::AlreadyMember | OrganizationError::AlreadyExists => {
                AppError::conflict(message)
            }
        }
    }

    fn failure() -> &'static str {
        "Failed to update organization"
    }

    fn changed_concurrently() -> &'static str {
        "The organization was changed by concurrent requests; retry the request"
    }

    fn claim_refusal(kind: ClaimKind) -> Option<AppError> {
        (kind == ClaimKind::OrganizationMember).then(|| AppError::conflict(ALREADY_IN_ORGANIZATION))
    }
}

impl Refusals for Invoice {
    fn refusal(error: InvoiceError) -> AppError {
        let message = error.to_string();
        match error {
            InvoiceError::NotFound => AppError::not_found(message),
            InvoiceError::AlreadyExists
            | InvoiceError::StillDraft
            | InvoiceError::AlreadyIssued
            | InvoiceError::InvoiceAlreadyPaid
            | InvoiceError::Voided
            | InvoiceError::AlreadyVoid
            | InvoiceError::Uncollectible
            | InvoiceError::AlreadyUncollectible
            | InvoiceError::PaidCannotBeVoided
            | InvoiceError::PartlyPaidCannotBeVoided
            | InvoiceError::NotStandard
            | InvoiceError::NothingLeftToCredit => AppError::conflict(message),
            _ => AppError::invalid(message),
        }
    }

    fn failure() -> &'static str {
        "Failed to update invoice"
    }

    fn changed_concurrently() -> &'static str {
        "The invoice was changed by concurrent requests; retry the request"
    }
}

impl Refusals for Payment {
    fn refusal(error: PaymentError) -> AppError {
        let message = error.to_string();
        match error {
            PaymentError::NotFound => AppError::not_found(message),
            PaymentError::AlreadyExists | PaymentError::AlreadySettled => {
                AppError::conflict(message)
            }
            _ => AppError::invalid(message),
        }
    }

    fn failure() -> &'static str {
        "Failed to record payment"
    }

    fn changed_concurrently() -> &'static str {
        "The payment was changed by concurrent requests; retry the request"
    }
}

impl Refusals for CreditLedger {
    fn refusal(error: CreditError) -> AppError {
        let message = error.to_string();
        match error {
            CreditError::NotFound => AppError::not_found(crate::customers::NOT_FOUND),
            CreditError::GrantNotFound => AppError::not_found(message),
            CreditError::InsufficientCredits => AppError::PaymentFailed {
                code: "insufficient_credits".to_owned(),
                message,
            },
            CreditError::GrantExists | CreditError::AlreadyRevoked | CreditError::GrantExpired => {
                AppError::conflict(message)
            }
            _ => AppError::invalid(message),
        }
    }

    fn failure() -> &'static str {
        "Failed to update credits"
    }

    fn changed_concurrently() -> &'static str {
        "The credits were changed by concurrent requests; retry the request"
    }
}
