//! The service's own tables: operator configuration and request bookkeeping that is not
//! merchant data, so not events (keys, merchants and their provider settings, idempotency keys,
//! portal sessions, links to provider objects, the webhook ledger, sandbox setup intents), and
//! the service's own running: flows in progress and which instances live.

pub mod api_keys;
pub mod flow_runs;
pub mod idempotency_keys;
pub mod instances;
pub mod merchants;
pub mod portal_sessions;
pub mod provider_links;
pub mod sandbox_intents;
pub mod test_clocks;
pub mod webhook_ledger;
