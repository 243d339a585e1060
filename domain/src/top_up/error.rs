/// Every rule the TopUp aggregate protects, one variant each. The messages are the API's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopUpError {
    #[error("featureSlug is required")]
    FeatureRequired,
    #[error(
        "featureSlug must be 1 to 64 lowercase letters, digits, _ or -, starting with a letter"
    )]
    InvalidFeatureSlug,
    #[error("name is required: 1 to 200 characters")]
    InvalidName,
    #[error("creditsPerUnit must be a whole number from 1 to 1000000000")]
    InvalidCreditsPerUnit,
    #[error("unitAmountCents must be a whole number of cents from 1 to 1000000000000")]
    InvalidUnitAmount,
    #[error("Currency must be a three-letter ISO 4217 code")]
    InvalidCurrency,
    /// A top-up's price is in its plans' currency: a customer pays both in one.
    #[error("planIds: plan {0} is priced in {1}, not in the top-up's currency")]
    PlanCurrencyMismatch(String, String),
    #[error("expiresAfterDays must be a whole number from 1 to 3650")]
    InvalidExpiry,
    #[error("maxQuantity must be a whole number from 1 to 10000")]
    InvalidMaxQuantity,
    #[error("Top-up already exists")]
    AlreadyExists,
    #[error("Top-up not found")]
    NotFound,
    /// A purchase of no unit, a fraction, or more than the merchant allows at once.
    #[error("quantity must be a whole number from 1 to {0}")]
    InvalidQuantity(i64),
}

impl From<crate::currency::InvalidCurrency> for TopUpError {
    fn from(_: crate::currency::InvalidCurrency) -> Self {
        TopUpError::InvalidCurrency
    }
}
