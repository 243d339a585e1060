/// Every rule the Customer aggregate protects, one variant each. Messages are the seed's
/// where the seed names one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("Email is required")]
    EmailRequired,
    #[error("Invalid email address")]
    InvalidEmail,
    #[error("{field} {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("A customer with this email already exists")]
    EmailTaken,
    #[error("Another customer with this email already exists. Use dangerouslyAllowSameEmailForDifferentCustomers to allow.")]
    EmailTakenByAnother,
    #[error("A customer with this externalCustomerId already exists")]
    ExternalIdTaken,
    /// Never created, or created by another tenant: the two must look the same.
    #[error("Customer not found or access denied")]
    NotFound,
    /// Soft-deleted customers are gone from every operation.
    #[error("Customer not found or access denied")]
    AlreadyDeleted,
    #[error("Customer already exists")]
    AlreadyExists,
    /// A port the rules depend on could not answer; not the caller's fault.
    #[error("{0}")]
    Unavailable(String),
}

impl From<crate::email::EmailError> for CustomerError {
    fn from(error: crate::email::EmailError) -> Self {
        match error {
            crate::email::EmailError::Missing => CustomerError::EmailRequired,
            crate::email::EmailError::Invalid => CustomerError::InvalidEmail,
        }
    }
}

impl From<crate::ports::PortError> for CustomerError {
    fn from(error: crate::ports::PortError) -> Self {
        CustomerError::Unavailable(error.0)
    }
}
