/// Every rule the Plan aggregate protects, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("Name is required")]
    NameRequired,
    /// Also when no currency is given: a plan's prices mean nothing without one.
    #[error("Currency must be a three-letter ISO 4217 code")]
    InvalidCurrency,
    /// Also when no pricing data is given.
    #[error("pricingData must be an object with a components array")]
    InvalidPricingData,
    /// One component of `pricingData.components` is not a valid flat, per_seat or usage one.
    #[error("Invalid pricing component: {0}")]
    InvalidComponent(String),
    #[error("interval must be month or year")]
    InvalidInterval,
    #[error("trialDays must be a whole number from 0 to 730")]
    InvalidTrialDays,
    #[error("creditAllowance must be zero or more")]
    InvalidCreditAllowance,
    #[error("{0}")]
    InvalidCredits(String),
    #[error("Plan already exists")]
    AlreadyExists,
}

impl From<crate::currency::InvalidCurrency> for PlanError {
    fn from(_: crate::currency::InvalidCurrency) -> Self {
        PlanError::InvalidCurrency
    }
}
