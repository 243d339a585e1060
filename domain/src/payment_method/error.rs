/// Every rule the PaymentMethod aggregate protects, one variant each. Messages are the seed's
/// where the seed names one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentMethodError {
    /// Never added, or added by another tenant: the two must look the same.
    #[error("Payment method not found")]
    NotFound,
    /// A removed payment method is gone to the API, so it reads as not found (404); the
    /// variant of its own tells the two cases apart in logs and tests.
    #[error("Payment method not found")]
    Removed,
    /// A subscription still charges it; the API answers 409.
    #[error("Payment method is linked to an active subscription")]
    LinkedToActiveSubscription,
    #[error("Card expiry month must be between 1 and 12")]
    InvalidCardExpiry,
    #[error("Payment method already exists")]
    AlreadyExists,
}
