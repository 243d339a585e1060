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
}
