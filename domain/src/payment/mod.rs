//! The Payment aggregate: one charge or refund through a payment provider, recorded `pending`
//! before the provider is asked and settled once by its answer or its webhook.

mod aggregate;
mod command;
mod error;
mod event;
mod kind;
mod services;
mod status;
#[cfg(test)]
mod tests;

pub use aggregate::Payment;
pub use command::{PaymentCommand, SettlementOutcome};
pub use error::PaymentError;
pub use event::PaymentEvent;
pub use kind::PaymentKind;
pub use services::PaymentServices;
pub use status::PaymentStatus;
