use std::sync::Arc;

use crate::clock::Clock;

/// What the PaymentMethod rules need from outside: the time.
#[derive(Clone)]
pub struct PaymentMethodServices {
    pub clock: Arc<dyn Clock>,
}
