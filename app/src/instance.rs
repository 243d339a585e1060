//! This process as one instance of the service among others on the same database: the key its
//! unfinished work (flows, keyed requests) is recorded under, and whether the instance that
//! holds some work is still running (`projections::tables::instances`).

use std::sync::{Arc, Mutex};

use projections::tables::instances::{self, Liveness};
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::error::AppError;

/// The instance's liveness, taken the first time it is needed and held until the process ends
/// (or, in tests, [`Instance::stop_living`]).
#[derive(Clone, Default)]
pub struct Instance {
    liveness: Arc<OnceCell<(i64, Mutex<Option<Liveness>>)>>,
}

impl Instance {
    /// The key this instance's work is recorded under; its liveness lock is held from the first
    /// call on, before any work is recorded under the key.
    pub async fn key(&self, pool: &PgPool) -> Result<i64, AppError> {
        let (key, _) = self
            .liveness
            .get_or_try_init(|| async {
                let liveness = instances::hold(pool).await?;
                Ok::<_, sqlx::Error>((liveness.key, Mutex::new(Some(liveness))))
            })
            .await?;
        Ok(*key)
    }

    /// Whether the instance that recorded some work under `holder` still runs; `None` (nobody
    /// holds it) counts as gone.
    pub async fn is_alive(pool: &PgPool, holder: Option<i64>) -> Result<bool, AppError> {
        match holder {
            Some(key) => Ok(instances::is_alive(pool, key).await?),
            None => Ok(false),
        }
    }

    /// Ends the liveness as a killed process's ends: its work may be taken over from now on.
    /// For tests that play an instance's death inside one process.
    /// Answers once the other instances see it gone.
    pub async fn stop_living(&self) {
        let liveness = self
            .liveness
            .get()
            .and_then(|(_, liveness)| liveness.lock().expect("liveness").take());
        if let Some(liveness) = liveness {
            liveness.end().await;
        }
    }
}
