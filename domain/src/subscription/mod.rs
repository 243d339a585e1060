//! The Subscription aggregate: a customer's subscription to a plan, the payment method it is
//! charged to, and its life from active through past due to canceled.

mod aggregate;
mod command;
mod error;
mod event;
pub mod period;
mod plan_snapshot;
mod services;
mod status;
#[cfg(test)]
mod tests;

pub use aggregate::{Subscription, MAX_QUANTITY};
pub use command::SubscriptionCommand;
pub use error::SubscriptionError;
pub use event::SubscriptionEvent;
pub use plan_snapshot::PlanSnapshot;
pub use services::SubscriptionServices;
pub use status::SubscriptionStatus;
