/// Every rule the Organization aggregate protects, one variant each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    #[error("Name is required")]
    NameRequired,
    /// Never created, or created by another tenant: the two must look the same.
    #[error("Organization not found")]
    NotFound,
    /// Also for the primary customer, who belongs to the organization from its creation.
    #[error("Customer is already a member of this organization")]
    AlreadyMember,
    #[error("Organization already exists")]
    AlreadyExists,
}
