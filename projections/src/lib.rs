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
mod inline_rebuild;
pub mod organization_list;
pub mod payment_method_list;
pub mod plan_list;
pub mod portal_overview;
pub mod rebuild;
mod row_write;
pub mod snapshots;
pub mod status;
pub mod subscription_list;

pub use event_log::{ClaimConflict, ClaimKind, EventLog};
