//! Top-ups: credits a merchant offers its customers to buy, per unit, in the currency of the
//! plans they are offered to. A top-up is a product; what a purchase of it makes (a charge,
//! then a paid invoice and a grant) is `purchase.rs`, carried by the charge itself so that
//! whoever settles the charge — the provider's answer, its webhook, or a resumed flow —
//! finishes the purchase the same way.

mod aggregate;
mod command;
mod error;
mod event;
mod purchase;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{is_offered, TopUp};
pub use command::{OfferedPlan, TopUpCommand};
pub use error::TopUpError;
pub use event::TopUpEvent;
pub use purchase::{PurchaseIds, TopUpPurchase};
pub use services::TopUpServices;
