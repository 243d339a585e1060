//! billstream's application layer: every use-case and cross-aggregate flow, as methods of
//! [`App`], each returning one [`AppError`]. No HTTP here: the `api` crate parses requests,
//! calls one use-case and maps its answer.
//!
//! Machinery: `command_runner.rs` (load, per-aggregate turns, append, retry, snapshot),
//! `aggregate_locks.rs` (one command per aggregate at a time in a process),
//! `customer_lock.rs` (a subscription start and its customer's delete take turns, across
//! processes), `refusals.rs` (a command's failure as the caller's error, claims included),
//! `ids.rs` (one id parser), `gateways.rs` (the merchant's `PaymentGateway`), `reactions.rs`
//! (the log's consumers), `flows.rs` (multi-step flows recorded, and resumed when the instance
//! running one is gone), `instance.rs` (this process among the service's instances). Use-cases, one file per family: `customers`, `subscriptions`,
//! `payment_methods`, `plans`, `organizations`, `portal`, `setup_intents`, `provider_events`,
//! `audit`, `auth`, `idempotency`, `merchants`.

pub mod aggregate_locks;
pub mod audit;
pub mod auth;
pub mod billing_cycle;
pub mod bulk_renewals;
pub mod charges;
pub mod coalesced_commands;
pub mod command_runner;
pub mod context;
pub mod credits;
pub mod customer_lock;
pub mod customers;
pub mod demo;
pub mod document_rendering;
mod document_series;
pub mod due_work;
pub mod error;
pub mod flows;
pub mod gateways;
pub mod idempotency;
pub mod ids;
pub mod instance;
pub mod invoice_documents;
pub mod invoices;
pub mod key_cache;
pub mod merchants;
pub mod number_prefixes;
pub mod organizations;
pub mod payment_methods;
pub mod payments;
pub mod pdf_cache;
mod pieces_in_flight;
pub mod plans;
pub mod portal;
pub mod portal_billing;
pub mod portal_page;
pub mod portal_stream;
pub mod principal;
pub mod provider_events;
pub mod reactions;
pub mod refunds;
pub mod refusals;
pub mod return_url;
pub mod scheduler;
pub mod scheduler_status;
pub mod setup_intents;
pub mod subscriptions;
pub mod test_clock;
pub mod top_ups;

pub use context::App;
pub use error::AppError;
pub use principal::{CommandMetadata, PortalSession, Principal};
