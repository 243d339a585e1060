//! The Invoice aggregate: a bill to a customer from draft to issued, then paid, void or
//! uncollectible; and the adjustment documents (cancellations, credit notes) that correct an
//! issued one, each an invoice of its own with a negative total.

mod adjustment;
mod aggregate;
mod command;
mod document_type;
mod error;
mod event;
mod header;
mod line;
mod services;
mod status;
#[cfg(test)]
mod tests;

pub use adjustment::InvoiceAdjustment;
pub use aggregate::Invoice;
pub use command::InvoiceCommand;
pub use document_type::DocumentType;
pub use error::InvoiceError;
pub use event::InvoiceEvent;
pub use header::DocumentHeader;
pub use line::{InvoiceLine, LineInput};
pub use services::{DocumentFingerprint, InvoiceServices, PdfFingerprint, FIRST_RENDERER};
pub use status::InvoiceStatus;
