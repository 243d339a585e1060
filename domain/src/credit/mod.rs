//! The credit ledger of one customer for one feature: grants of credits (from the plan each
//! period, by hand, as a promotion or refund, or bought as a top-up), usage that consumes them
//! in a fixed order, and what ends them (expiry, revocation).
//!
//! One ledger per (customer, feature), not per customer: usage of one feature never waits on
//! another's, a balance is per feature anyway, and "never overdrawn" is then one aggregate's
//! rule, kept by its version on append — two usages racing for the last credit cannot both
//! draw it.

mod aggregate;
mod command;
mod error;
mod event;
mod feature_slug;
mod grant;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{CreditBalance, CreditLedger, UsageOutcome, MAX_CREDITS};
pub use command::{CreditCommand, NewGrant};
pub use error::CreditError;
pub use event::{CreditDraw, CreditEvent};
pub use feature_slug::FeatureSlug;
pub use grant::{CreditGrant, GrantSource, GrantStatus};
pub use services::CreditServices;
