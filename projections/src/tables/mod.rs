//! The service's own tables: operator configuration and request bookkeeping that is not
//! merchant data, so not events (keys, merchants and their provider settings, idempotency keys,
//! portal sessions, links to provider objects, the webhook ledger, sandbox setup intents).

pub mod api_keys;
pub mod idempotency_keys;
pub mod merchants;
pub mod portal_sessions;
pub mod provider_links;
pub mod sandbox_intents;
pub mod webhook_ledger;
