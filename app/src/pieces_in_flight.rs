//! The pieces of due work running in this process. The scheduler and a test-clock advance read
//! the same due work and may start the same piece side by side; the second then waits for the
//! first, and finds the work done (a period end is checked still due: `due_work.rs`) instead
//! of doing it again. Doing it again would be harmless (each piece is exact once:
//! `billing_cycle.rs`) but not free: the second run records a flow, loads every aggregate and
//! reads the customer, merchant and plan again, only to find the work done. In the renewal
//! benchmark those reads came twice per renewal. Across processes nothing is shared, and the
//! flows keep the work exact once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub(crate) struct PiecesInFlight {
    running: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// This run's hold on its piece: while it lives, another start of the same piece waits.
pub(crate) struct PieceHold {
    key: String,
    owner: Arc<PiecesInFlight>,
    // Released after `drop` has removed the key, so a waiter wakes to a finished piece.
    _running: OwnedMutexGuard<()>,
}

impl Drop for PieceHold {
    fn drop(&mut self) {
        self.owner
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl PiecesInFlight {
    /// The hold on piece `key` for this run, or `None` once another run of it in this process,
    /// waited for here, has let go of it (done, failed, or its caller gone).
    pub(crate) async fn begin(self: &Arc<Self>, key: String) -> Option<PieceHold> {
        let running = {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            match running.get(&key) {
                Some(other) => other.clone(),
                None => {
                    let mine = Arc::new(AsyncMutex::new(()));
                    let hold = mine
                        .clone()
                        .try_lock_owned()
                        .expect("a lock made just now is free");
                    running.insert(key.clone(), mine);
                    return Some(PieceHold {
                        key,
                        owner: self.clone(),
                        _running: hold,
                    });
                }
            }
        };
        drop(running.lock().await);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_second_start_of_a_running_piece_waits_for_it_and_is_told_so() {
        let pieces = Arc::new(PiecesInFlight::default());
        let first = pieces.begin("renew sub_1".into()).await.expect("first run");
        let second = tokio::spawn({
            let pieces = pieces.clone();
            async move { pieces.begin("renew sub_1".into()).await.is_some() }
        });
        // Another piece is not held up.
        let other = pieces.begin("renew sub_2".into()).await;
        assert!(other.is_some());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !second.is_finished(),
            "the second start waits for the first"
        );
        drop(first);
        let ran_again = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("the second start ends with the first")
            .unwrap();
        assert!(
            !ran_again,
            "the second start is told another run held the piece"
        );
        // Once ended, the piece can be started anew (by a later pass, should it still be due).
        assert!(pieces.begin("renew sub_1".into()).await.is_some());
    }
}
