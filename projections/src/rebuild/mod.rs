//! Rebuilding a read model from the log while the service keeps answering. The registry
//! (`read_models/registry.rs`) says how each one is rebuilt: `customer_list` into a fresh table
//! swapped in (`customer_list.rs`), the small billing tables in place (`in_place.rs`), a
//! catch-up read model into a fresh table with a checkpoint of its own (`catch_up.rs`).

mod catch_up;
mod customer_list;
mod in_place;
mod lock;
mod report;
mod table_swap;

use sqlx::PgPool;

pub use self::report::{Progress, RebuildError, RebuildReport};
use crate::read_models::registry::{self, Feeding, RebuildMethod};

/// Rebuilds the read model called `name` from position zero and swaps it in.
pub async fn rebuild(
    pool: &PgPool,
    name: &str,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let model = registry::find(name).ok_or_else(|| RebuildError::Unknown(name.to_owned()))?;
    match (model.rebuild, model.feeding) {
        (RebuildMethod::FreshTable, _) => {
            customer_list::rebuild_customer_list(pool, progress).await
        }
        (RebuildMethod::FreshCatchUp, _) => catch_up::rebuild_portal_overview(pool, progress).await,
        (RebuildMethod::InPlace { aggregate_type }, Feeding::Inline(projection)) => {
            in_place::rebuild_in_place(pool, model, aggregate_type, projection, progress).await
        }
        (RebuildMethod::InPlace { .. }, Feeding::CatchUp) => {
            Err(RebuildError::Unknown(name.to_owned()))
        }
    }
}
