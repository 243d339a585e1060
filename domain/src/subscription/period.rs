//! Billing periods: a subscription bills from its anchor (its start, or its trial's end) in
//! whole months or years. Each period's end is counted from the anchor, not from the previous
//! end, so a subscription anchored on the 31st bills on the last day of shorter months and
//! returns to the 31st after them, as Stripe's billing cycle anchor does.

use chrono::{DateTime, Months, Utc};

use crate::plan::Interval;

/// The end of period `index` (0 is the first) of a subscription anchored at `anchor`: the
/// anchor plus `index + 1` intervals, the day clamped to the month's last.
pub fn period_end(anchor: DateTime<Utc>, interval: Interval, index: u32) -> DateTime<Utc> {
    let months = match interval {
        Interval::Month => index.saturating_add(1),
        Interval::Year => index.saturating_add(1).saturating_mul(12),
    };
    anchor
        .checked_add_months(Months::new(months))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The start of period `index`: the end of the one before, or the anchor.
pub fn period_start(anchor: DateTime<Utc>, interval: Interval, index: u32) -> DateTime<Utc> {
    match index.checked_sub(1) {
        Some(before) => period_end(anchor, interval, before),
        None => anchor,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    #[test]
    fn monthly_periods_count_from_the_anchor_and_clamp_to_the_months_last_day() {
        let anchor = at(2026, 1, 31);
        let ends: Vec<_> = (0..4)
            .map(|i| period_end(anchor, Interval::Month, i))
            .collect();
        assert_eq!(
            ends,
            vec![
                at(2026, 2, 28),
                at(2026, 3, 31),
                at(2026, 4, 30),
                at(2026, 5, 31)
            ]
        );
        assert_eq!(period_start(anchor, Interval::Month, 0), anchor);
        assert_eq!(period_start(anchor, Interval::Month, 2), at(2026, 3, 31));
    }

    #[test]
    fn yearly_periods_are_twelve_months() {
        let anchor = at(2028, 2, 29);
        assert_eq!(period_end(anchor, Interval::Year, 0), at(2029, 2, 28));
        assert_eq!(period_end(anchor, Interval::Year, 3), at(2032, 2, 29));
    }
}
