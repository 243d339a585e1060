//! Issues of one tenant's document series (`INV-`, `CAN-`, `CN-`) take turns in this process,
//! and each turn remembers the number it claimed, so the next turn does not read the series'
//! last number back from the database. A turn is the whole issue — the number, the PDF
//! rendered with it, the append that claims it — so its length bounds how many invoices one
//! tenant issues a second; the read was a round trip of it.
//!
//! Remembering is safe: a number is only remembered once its claim has committed, and numbers
//! only grow. Should another instance have claimed numbers since, the remembered one is
//! behind, the claim of the next collides in the append, and the turn reads the last number
//! from the database instead.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::OwnedMutexGuard;

use crate::aggregate_locks::AggregateLocks;

#[derive(Default)]
pub(crate) struct DocumentSeries {
    turns: AggregateLocks,
    last_claimed: Mutex<HashMap<String, i32>>,
}

impl DocumentSeries {
    /// Waits for the turn of series `key` (`tenant key:series`); it lasts as long as the guard.
    pub(crate) async fn turn(&self, key: &str) -> OwnedMutexGuard<()> {
        self.turns.lock(key).await
    }

    /// The number this process last claimed in series `key`, if it remembers one.
    pub(crate) fn last_claimed(&self, key: &str) -> Option<i32> {
        self.claimed().get(key).copied()
    }

    /// Remembers `number` as the series' last (after its claim committed), or forgets the
    /// series (`None`: a claim collided, so the database knows better).
    pub(crate) fn remember(&self, key: &str, number: Option<i32>) {
        let mut claimed = self.claimed();
        match number {
            Some(number) => {
                claimed.insert(key.to_owned(), number);
            }
            None => {
                claimed.remove(key);
            }
        }
    }

    fn claimed(&self) -> std::sync::MutexGuard<'_, HashMap<String, i32>> {
        self.last_claimed.lock().unwrap_or_else(|e| e.into_inner())
    }
}
