//! billstream's side of PostgreSQL: the event log that cqrs-es appends to, and the read models
//! projected from it. Each read model lives in its own file and owns its tables.

pub mod catch_up;
mod catch_up_rebuild;
pub mod customer_list;
pub mod customer_uniqueness;
pub mod database;
pub mod event_feed;
pub mod event_log;
pub mod inline;
pub mod portal_overview;
pub mod rebuild;
pub mod snapshots;
pub mod status;

pub use event_log::{ClaimConflict, ClaimKind, EventLog};
