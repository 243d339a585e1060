/// Why a credit command was refused. The messages are the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    #[error("Customer not found")]
    NotFound,
    #[error("Insufficient credits")]
    InsufficientCredits,
    #[error("amount must be a whole number of credits from 1 to 1000000000000")]
    InvalidAmount,
    #[error("quantity must be a whole number from 1 to 1000000000000")]
    InvalidQuantity,
    #[error("priority must be from 0 to 100")]
    InvalidPriority,
    #[error(
        "featureSlug must be 1 to 64 lowercase letters, digits, _ or -, starting with a letter"
    )]
    InvalidFeatureSlug,
    #[error("A grant cannot expire before it starts")]
    ExpiresBeforeStart,
    #[error("idempotencyKey is required: 1 to 255 characters")]
    InvalidIdempotencyKey,
    #[error("Credit grant already exists")]
    GrantExists,
    #[error("Credit grant not found")]
    GrantNotFound,
    #[error("Credit grant is already revoked")]
    AlreadyRevoked,
    #[error("Credit grant has expired")]
    GrantExpired,
    #[error("referenceCode and notes must be at most 500 characters")]
    TextTooLong,
}
