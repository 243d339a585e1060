use std::sync::Arc;

use crate::clock::Clock;

/// What the Payment rules need from outside: the time.
#[derive(Clone)]
pub struct PaymentServices {
    pub clock: Arc<dyn Clock>,
}
