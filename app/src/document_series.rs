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
//!
//! The render was most of a turn. So an issue joining the queue is told the number it will
//! likely get — the last claimed, plus one for each issue ahead of it — and renders its
//! document with that number while it waits (`App::with_next_number`); in its turn the
//! document is found rendered. A guess that turns out wrong (an issue ahead was refused, or
//! another instance took numbers) only costs the render in the turn, as before: the number
//! is still whatever the turn claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::aggregate_locks::AggregateLocks;

#[derive(Default)]
pub(crate) struct DocumentSeries {
    turns: AggregateLocks,
    series: Mutex<HashMap<String, SeriesState>>,
}

#[derive(Default)]
struct SeriesState {
    /// The number this process last claimed, if it knows it.
    last_claimed: Option<i32>,
    /// Issues queued for the turn or in it.
    queued: usize,
}

/// An issue's place in the queue of a series' turn, from joining it until it claims its
/// number or gives up.
pub(crate) struct Place {
    series: Arc<DocumentSeries>,
    key: String,
    /// How many issues hold it: a batch's issues queue as one.
    issues: usize,
    left: bool,
}

impl Place {
    /// Leaves the queue having claimed `number` (remembered as the series' last) or, with
    /// `None`, having learnt that the database knows the series better (a claim collided).
    pub(crate) fn leave(mut self, number: Option<i32>) {
        self.left = true;
        let mut all = self.series.lock();
        let state = all.entry(self.key.clone()).or_default();
        state.last_claimed = number;
        state.queued = state.queued.saturating_sub(self.issues);
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if !self.left {
            let mut all = self.series.lock();
            let state = all.entry(self.key.clone()).or_default();
            state.queued = state.queued.saturating_sub(self.issues);
        }
    }
}

impl DocumentSeries {
    /// Joins the queue of series `key` (`tenant key:series`): the place, and the number this
    /// issue will likely claim when the series' last is known.
    pub(crate) fn join(self: &Arc<Self>, key: &str) -> (Place, Option<i32>) {
        self.join_with(key, 1)
    }

    /// Joins the queue of series `key` with `issues` issues that take their turn together:
    /// the place, and the number the first of them will likely claim.
    pub(crate) fn join_with(self: &Arc<Self>, key: &str, issues: usize) -> (Place, Option<i32>) {
        let mut all = self.lock();
        let state = all.entry(key.to_owned()).or_default();
        let ahead = i32::try_from(state.queued).unwrap_or(i32::MAX);
        let likely = state
            .last_claimed
            .and_then(|last| last.checked_add(1)?.checked_add(ahead));
        state.queued += issues;
        let place = Place {
            series: self.clone(),
            key: key.to_owned(),
            issues,
            left: false,
        };
        (place, likely)
    }

    /// Waits for the turn of series `key`; it lasts as long as the guard.
    pub(crate) async fn turn(&self, key: &str) -> OwnedMutexGuard<()> {
        self.turns.lock(key).await
    }

    /// The number this process last claimed in series `key`, if it remembers one.
    pub(crate) fn last_claimed(&self, key: &str) -> Option<i32> {
        self.lock().get(key).and_then(|state| state.last_claimed)
    }

    /// Forgets the series' last number: a claim collided, so the database knows better.
    pub(crate) fn forget(&self, key: &str) {
        if let Some(state) = self.lock().get_mut(key) {
            state.last_claimed = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SeriesState>> {
        self.series.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issue_is_told_the_last_number_plus_one_for_each_issue_ahead() {
        let series = Arc::new(DocumentSeries::default());
        let (first, unknown) = series.join("t:INV");
        assert_eq!(unknown, None, "no number is known before one is claimed");
        first.leave(Some(7));
        let (holder, likely) = series.join("t:INV");
        assert_eq!(likely, Some(8));
        let (second, likely) = series.join("t:INV");
        assert_eq!(likely, Some(9));
        let (_other_series, likely) = series.join("t:CAN");
        assert_eq!(likely, None);
        holder.leave(Some(8));
        // The one behind it is now first: it still gets 9.
        let (third, likely) = series.join("t:INV");
        assert_eq!(likely, Some(10));
        drop(second);
        drop(third);
        let (_, likely) = series.join("t:INV");
        assert_eq!(likely, Some(9), "issues that gave up are no longer ahead");
    }

    #[test]
    fn a_batch_holds_a_place_for_each_of_its_issues() {
        let series = Arc::new(DocumentSeries::default());
        let (first, _) = series.join("t:INV");
        first.leave(Some(10));
        let (batch, likely) = series.join_with("t:INV", 5);
        assert_eq!(likely, Some(11), "the batch's first issue");
        let (behind, likely) = series.join("t:INV");
        assert_eq!(likely, Some(16), "after the batch's five");
        batch.leave(Some(15));
        let (_, likely) = series.join("t:INV");
        assert_eq!(likely, Some(17), "only the one behind it is still ahead");
        drop(behind);
    }

    #[test]
    fn a_collision_forgets_the_last_number() {
        let series = Arc::new(DocumentSeries::default());
        let (place, _) = series.join("t:INV");
        place.leave(Some(3));
        assert_eq!(series.last_claimed("t:INV"), Some(3));
        series.forget("t:INV");
        assert_eq!(series.last_claimed("t:INV"), None);
        let (_, likely) = series.join("t:INV");
        assert_eq!(likely, None);
    }
}
