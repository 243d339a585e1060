//! The Organization aggregate: a primary customer and the customers who hold seats under it.

mod aggregate;
mod command;
mod error;
mod event;
mod role;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::Organization;
pub use command::OrganizationCommand;
pub use error::OrganizationError;
pub use event::OrganizationEvent;
pub use role::OrgRole;
pub use services::OrganizationServices;
