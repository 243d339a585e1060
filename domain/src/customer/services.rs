use std::sync::Arc;

use crate::clock::Clock;
use crate::ports::CustomerUniqueness;

/// What the Customer rules need from outside: who else holds an email, and the time.
#[derive(Clone)]
pub struct CustomerServices {
    pub uniqueness: Arc<dyn CustomerUniqueness>,
    pub clock: Arc<dyn Clock>,
}
