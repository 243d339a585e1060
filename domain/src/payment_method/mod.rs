//! The PaymentMethod aggregate: a customer's card or mandate held by a payment provider, the
//! subscription it is linked to, and the rule that a linked one cannot be removed.

mod aggregate;
mod card;
mod command;
mod error;
mod event;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::PaymentMethod;
pub use card::Card;
pub use command::PaymentMethodCommand;
pub use error::PaymentMethodError;
pub use event::PaymentMethodEvent;
pub use services::PaymentMethodServices;
