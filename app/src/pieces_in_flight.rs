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
        match self.try_begin(key) {
            Ok(hold) => Some(hold),
            Err(other) => {
                drop(other.lock().await);
                None
            }
        }
    }

    /// The hold on piece `key` if no other run of it in this process has one; otherwise
    /// that run's lock, to wait on. (A batch skips a piece another run is doing.)
    pub(crate) fn try_begin(
        self: &Arc<Self>,
        key: String,
    ) -> Result<PieceHold, Arc<AsyncMutex<()>>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = running.get(&key) {
            return Err(other.clone());
        }
        let mine = Arc::new(AsyncMutex::new(()));
        let hold = mine
            .clone()
            .try_lock_owned()
            .expect("a lock made just now is free");
        running.insert(key.clone(), mine);
        Ok(PieceHold {
            key,
            owner: self.clone(),
            _running: hold,
        })
    }

    /// Waits for the pieces running now whose keys start with `prefix` (a tenant's: `tenant
    /// key:`) to end; answers whether there were any. Pieces started meanwhile are not waited
    /// for.
    pub(crate) async fn wait_for(&self, prefix: &str) -> bool {
        let running: Vec<Arc<AsyncMutex<()>>> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .map(|(_, piece)| piece.clone())
            .collect();
        for piece in &running {
            drop(piece.lock().await);
        }
        !running.is_empty()
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

    #[tokio::test]
    async fn waiting_for_a_tenants_pieces_waits_for_those_running_and_no_others() {
        let pieces = Arc::new(PiecesInFlight::default());
        assert!(!pieces.wait_for("t1:").await, "nothing runs");
        let first = pieces.begin("t1:renew sub_1".into()).await.expect("a run");
        let _other_tenant = pieces.begin("t2:renew sub_2".into()).await.expect("a run");
        let waiting = tokio::spawn({
            let pieces = pieces.clone();
            async move { pieces.wait_for("t1:").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the tenant's piece still runs");
        drop(first);
        let waited = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("the wait ends with the tenant's piece, whatever other tenants run")
            .unwrap();
        assert!(waited);
    }
}
