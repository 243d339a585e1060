//! One queue per aggregate inside this process: commands on the same aggregate wait their
//! turn instead of racing each other to the append and retrying. Across processes the log's
//! (aggregate, sequence) key still decides, and `CommandBus` retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// Past this many entries, forgotten aggregates are swept from the map on the next lock.
const SWEEP_ABOVE: usize = 1024;

#[derive(Default)]
pub struct AggregateLocks {
    locks: Mutex<HashMap<String, Weak<AsyncMutex<()>>>>,
}

impl AggregateLocks {
    /// Waits until no other command of this process works on `aggregate_id`; the turn lasts
    /// as long as the guard.
    pub async fn lock(&self, aggregate_id: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            match locks.get(aggregate_id).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    if locks.len() >= SWEEP_ABOVE {
                        locks.retain(|_, lock| lock.strong_count() > 0);
                    }
                    let lock = Arc::new(AsyncMutex::new(()));
                    locks.insert(aggregate_id.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_second_command_on_one_aggregate_waits_for_the_first() {
        let locks = Arc::new(AggregateLocks::default());
        let first = locks.lock("cust_1").await;
        let waiting = tokio::spawn({
            let locks = locks.clone();
            async move { locks.lock("cust_1").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "second lock must wait for the first"
        );
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("second lock granted once the first is released")
            .expect("task");
    }

    #[tokio::test]
    async fn different_aggregates_do_not_wait_for_each_other() {
        let locks = AggregateLocks::default();
        let _first = locks.lock("cust_1").await;
        tokio::time::timeout(Duration::from_millis(100), locks.lock("cust_2"))
            .await
            .expect("another aggregate is free");
    }

    #[tokio::test]
    async fn released_aggregates_are_swept_from_the_map() {
        let locks = AggregateLocks::default();
        for i in 0..(SWEEP_ABOVE + 10) {
            drop(locks.lock(&format!("cust_{i}")).await);
        }
        assert!(locks.locks.lock().unwrap().len() <= SWEEP_ABOVE);
    }
}
