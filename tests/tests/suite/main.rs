//! The black-box suite, one module per feature, all in one test binary: the suite links once
//! instead of once per feature.
//!
//! No test here may depend on having a process of its own: tests of every module run side by
//! side on the test harness's threads, each with its own runtime, app and database.

mod billing_lists;
mod billing_workload;
mod cascade_delete;
mod catch_up;
mod concurrency;
mod control_characters;
mod credits;
mod customers;
mod customers_api;
mod dodo;
mod errors;
mod events_api;
mod events_metadata;
mod failed_auth;
mod feed;
mod health;
mod idempotency;
mod invoices;
mod list_memory;
mod openapi;
mod organizations;
mod plans;
mod portal;
mod portal_freshness;
mod portal_page;
mod portal_stream;
mod public_url;
mod rebuild;
mod rebuild_billing;
mod restart;
mod sandbox_cards;
mod slow_clients;
mod snapshots;
mod stripe;
mod subscriptions;
mod tenancy;
mod time_travel;
mod top_ups;
mod upcasting;
