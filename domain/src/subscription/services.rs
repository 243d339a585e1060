use std::sync::Arc;

use crate::clock::Clock;

/// What the Subscription rules need from outside: the time.
#[derive(Clone)]
pub struct SubscriptionServices {
    pub clock: Arc<dyn Clock>,
}
