//! The Customer aggregate: a merchant's customer, its contact and billing details, and the
//! rules on email and external-id uniqueness and soft deletion from the Customers API seed.

mod aggregate;
mod command;
mod details;
mod error;
mod event;
mod services;
#[cfg(test)]
mod tests;
pub(crate) mod upcast;

pub use aggregate::Customer;
pub use command::CustomerCommand;
pub use details::{CustomerDetails, DetailChanges, DetailField};
pub use error::CustomerError;
pub use event::CustomerEvent;
pub use services::CustomerServices;
