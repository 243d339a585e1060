//! The application layer's tests against a real PostgreSQL: each cross-aggregate rule and flow
//! through its use-case, without HTTP. One binary, a module per concern.

mod billing_cycle;
mod bulk_renewals;
mod catch_up_statistics;
mod command_runner;
mod crashes;
mod credits;
mod customer_lock;
mod customers;
mod demo;
mod invoices;
mod organizations;
mod payment_methods;
mod portal;
mod provider_events;
mod setup_intents;
mod subscriptions;
mod support;
mod top_ups;
