//! Failed authentication is rate limited per client address: guessing keys or session tokens
//! costs a caller a budget of failures (a burst of 30, refilled 5 a second), and past it every
//! credential from that address that is not already known good is answered 429 with
//! `Retry-After`, valid or not, so that a blocked guesser learns nothing. Requests with a key
//! already known good are never slowed. Budgets live in this process, per address (`governor`,
//! GCRA), and addresses not seen for a while are forgotten.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failures allowed at once from one address.
const BURST: u32 = 30;
/// Failures an address earns back per second.
const PER_SECOND: u32 = 5;
/// Past this many addresses, those whose block has ended are forgotten on the next failure.
const SWEEP_ABOVE: usize = 4096;

#[derive(Clone)]
pub struct FailedAuth {
    budget: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses out of budget, and when their next failure is allowed.
    blocked: Arc<Mutex<HashMap<IpAddr, Instant>>>,
}

impl Default for FailedAuth {
    fn default() -> Self {
        let quota = Quota::per_second(NonZeroU32::new(PER_SECOND).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN));
        Self {
            budget: Arc::new(RateLimiter::keyed(quota)),
            blocked: Arc::default(),
        }
    }
}

/// The address of a connection whose address the server did not record (a router driven
/// in-process): one shared budget.
pub const UNKNOWN_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl FailedAuth {
    /// How long `address` must wait before presenting an unknown credential, if it must.
    pub fn blocked_for(&self, address: IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(&address)?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failed authentication of `address`; answers how long it must now wait, when
    /// this failure used up its budget.
    pub fn failed(&self, address: IpAddr) -> Option<Duration> {
        let clock = DefaultClock::default();
        let wait = match self.budget.check_key(&address) {
            Ok(()) => return None,
            Err(not_until) => not_until.wait_time_from(clock.now()),
        };
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if blocked.len() > SWEEP_ABOVE {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
            self.budget.retain_recent();
        }
        blocked.insert(address, Instant::now() + wait);
        Some(wait)
    }
}
