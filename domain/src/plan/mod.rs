//! The Plan aggregate: what a merchant sells, its currency and pricing components, and the
//! credits it grants. A subscription keeps a snapshot of its plan taken when it starts.

mod aggregate;
mod allowance;
mod command;
mod error;
mod event;
pub mod pricing;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::Plan;
pub use allowance::{AllowanceInput, CreditAllowance};
pub use command::PlanCommand;
pub use error::PlanError;
pub use event::PlanEvent;
pub use pricing::{Interval, PricingComponent};
pub use services::PlanServices;
