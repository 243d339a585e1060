/// Every rule the Subscription aggregate protects, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    /// Never started, or started by another tenant: the two must look the same.
    #[error("Subscription not found")]
    NotFound,
    /// A canceled subscription is kept for its history but takes no more changes.
    #[error("Subscription is canceled")]
    Canceled,
    #[error("Subscription is already canceled")]
    AlreadyCanceled,
    #[error("Grace period must end in the future")]
    GracePeriodInPast,
    #[error("Subscription already exists")]
    AlreadyExists,
    #[error("quantity must be a whole number from 1 to 10000")]
    InvalidQuantity,
    /// A renewal asked before the current period ended.
    #[error("The current period has not ended yet")]
    NotDue,
    /// A renewal of a period that does not follow the current one.
    #[error("The period does not follow the current one")]
    NotTheNextPeriod,
    /// Set to cancel when its period ends: it is not renewed.
    #[error("Subscription ends at the end of its period")]
    EndsAtPeriodEnd,
}
