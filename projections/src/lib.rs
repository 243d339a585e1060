//! Everything of billstream that speaks SQL:
//! - `event_store/`: the event log cqrs-es appends to and loads from, snapshots, the feed;
//! - `read_models/`: one file per read model, and the registry that names them all;
//! - `catch_up/`: the runner that feeds log consumers after the commit, from checkpoints;
//! - `rebuild/`: rebuilding a read model from the log while the service answers;
//! - `tables/`: the service's own tables (keys, merchants, idempotency, sessions, …);
//! - `database.rs` (connect and migrate), `statement_pool.rs` (connections for single
//!   statements, given back without sqlx's ping) and `status.rs` (where each read model stands).

pub mod catch_up;
pub mod database;
pub mod event_store;
pub mod read_models;
pub mod rebuild;
pub mod statement_pool;
pub mod status;
pub mod tables;
#[cfg(feature = "testing")]
pub mod testing;

pub use event_store::{ClaimConflict, ClaimKind, EventLog};
