//! How many events of the log a catch-up step looks at. A consumer that reads every event
//! takes a batch from the first `BATCH` events; one that reads a few aggregate types may have
//! to pass over thousands of others (a busy credit ledger's usages, for the portal overview)
//! to fill a batch, and passing them a batch at a time is a transaction per 500 events. So the
//! window widens while steps find few wanted events, up to `SCAN`, and narrows back when a
//! batch fills early: a dense stretch is not read twenty times over.

use super::{BATCH, SCAN};

/// The events the next step looks at; a runner or a rebuild keeps one across its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanWindow(i64);

impl Default for ScanWindow {
    fn default() -> Self {
        Self(BATCH)
    }
}

impl ScanWindow {
    pub fn events(self) -> i64 {
        self.0
    }

    /// After a step that moved past `passed` events of which `taken` were wanted: a full batch
    /// found within `passed` events sizes the window to twice that; a window passed without
    /// filling a batch widens fourfold.
    pub fn after(self, passed: i64, taken: i64) -> Self {
        let next = if taken >= BATCH {
            passed.saturating_mul(2)
        } else if passed >= self.0 {
            self.0.saturating_mul(4)
        } else {
            // The log ended first: nothing learned about its density.
            self.0
        };
        Self(next.clamp(BATCH, SCAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_sparse_wanted_events_when_windows_pass_unfilled_then_it_widens_up_to_the_scan() {
        let mut window = ScanWindow::default();
        let mut seen = vec![window.events()];
        for _ in 0..4 {
            window = window.after(window.events(), 10);
            seen.push(window.events());
        }
        assert_eq!(seen, vec![BATCH, 4 * BATCH, 16 * BATCH, SCAN, SCAN]);
    }

    #[test]
    fn given_a_wide_window_when_a_batch_fills_early_then_it_narrows_to_twice_what_that_took() {
        let window = ScanWindow(SCAN).after(BATCH + 100, BATCH);
        assert_eq!(window.events(), 2 * (BATCH + 100));
        assert_eq!(
            ScanWindow(SCAN).after(BATCH, BATCH).events(),
            2 * BATCH,
            "a dense stretch reads at most twice the batch"
        );
    }

    #[test]
    fn given_the_log_ends_within_the_window_then_the_window_stays() {
        let window = ScanWindow(4 * BATCH);
        assert_eq!(window.after(30, 3), window);
    }
}
