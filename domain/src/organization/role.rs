use serde::{Deserialize, Serialize};

/// A customer's place in an organization, as the seed's `orgRole` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// The customer the organization was created for, who is billed for it.
    Primary,
    /// A seat under the primary customer.
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Primary => "primary",
            OrgRole::Member => "member",
        }
    }
}
