//! Rebuilding the small inline read models (plans, subscriptions, payment methods,
//! organizations) in place: in one transaction that holds their tables against appends, empty
//! them and replay their aggregate's whole log through the same writes an append makes.
//! Readers keep seeing the old rows until the commit; appends of that aggregate wait for it.
//! These tables hold one row per billing object, few next to the customers, so the fresh-table
//! swap `customer_list` needs is not worth its machinery here.

use futures::TryStreamExt;
use sqlx::{Connection, PgPool};

use crate::inline::{AppendStatement, InlineProjection};
use crate::organization_list::{self, OrganizationListProjection};
use crate::payment_method_list::{self, PaymentMethodListProjection};
use crate::plan_list::{self, PlanListProjection};
use crate::rebuild::{self, Progress, RebuildError, RebuildLock, RebuildReport};
use crate::subscription_list::{self, SubscriptionListProjection};

/// An inline read model rebuilt in place: its name, its tables, the aggregate it follows.
pub(crate) struct InPlace {
    pub(crate) name: &'static str,
    pub(crate) tables: &'static [&'static str],
    pub(crate) aggregate_type: &'static str,
    pub(crate) projection: &'static dyn InlineProjection,
}

pub(crate) const IN_PLACE: &[InPlace] = &[
    InPlace {
        name: plan_list::TABLE,
        tables: &[plan_list::TABLE],
        aggregate_type: "Plan",
        projection: &PlanListProjection,
    },
    InPlace {
        name: subscription_list::TABLE,
        tables: &[subscription_list::TABLE],
        aggregate_type: "Subscription",
        projection: &SubscriptionListProjection,
    },
    InPlace {
        name: payment_method_list::TABLE,
        tables: &[payment_method_list::TABLE],
        aggregate_type: "PaymentMethod",
        projection: &PaymentMethodListProjection,
    },
    InPlace {
        name: organization_list::TABLE,
        tables: &[organization_list::TABLE, organization_list::MEMBERS],
        aggregate_type: "Organization",
        projection: &OrganizationListProjection,
    },
];

pub(crate) async fn rebuild_in_place(
    pool: &PgPool,
    model: &InPlace,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let mut lock = RebuildLock::take(pool, model.name).await?;
    let result = replay(&mut lock.connection, model, progress).await;
    lock.release().await;
    result
}

async fn replay(
    connection: &mut sqlx::PgConnection,
    model: &InPlace,
    progress: &dyn Progress,
) -> Result<RebuildReport, RebuildError> {
    let mut tx = Connection::begin(&mut *connection).await?;
    // Appends write these tables, so this waits for those in flight and holds off new ones
    // until the commit; reads go on meanwhile.
    for table in model.tables {
        sqlx::query(&format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await?;
    }
    for table in model.tables {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1")
        .bind(model.aggregate_type)
        .fetch_one(&mut *tx)
        .await?;
    progress.started(total as u64);
    // Every event committed before the lock was taken, one aggregate's history at a time.
    let events: Vec<cqrs_es::persist::SerializedEvent> = sqlx::query(
        "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, \
         metadata FROM events WHERE aggregate_type = $1 \
         ORDER BY aggregate_type, aggregate_id, sequence",
    )
    .bind(model.aggregate_type)
    .fetch(&mut *tx)
    .map_ok(|row| rebuild::serialized(&row))
    .try_collect::<Vec<_>>()
    .await?
    .into_iter()
    .collect::<Result<_, _>>()?;
    let mut done = 0u64;
    for history in events.chunk_by(|a, b| a.aggregate_id == b.aggregate_id) {
        let mut statement = AppendStatement::new();
        model.projection.writes(history, &mut statement)?;
        if statement.has_writes() {
            statement.finish().build().execute(&mut *tx).await?;
        }
        done += history.len() as u64;
        progress.advanced(done);
    }
    tx.commit().await?;
    Ok(RebuildReport {
        projection: model.name,
        events: done,
        caught_up: 0,
    })
}
