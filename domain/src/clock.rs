use chrono::{DateTime, SubsecRound, Utc};

use crate::tenant::Tenant;

/// Where the domain gets "now" from, so that tests can pin time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// "Now" for `tenant`: a test-mode tenant may run on a test clock of its own (moved
    /// forward by the merchant to watch renewals happen); everyone else is on [`Clock::now`].
    fn now_for(&self, tenant: &Tenant) -> DateTime<Utc> {
        let _ = tenant;
        self.now()
    }
}

/// The wall clock, truncated to microseconds: PostgreSQL keeps no more, and a value that
/// round-trips through the database unchanged keeps rebuilt read models equal to live ones.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// A clock that always answers the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
