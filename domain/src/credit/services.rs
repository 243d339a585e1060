use std::sync::Arc;

use crate::clock::Clock;

/// What the credit rules need from outside: the time.
#[derive(Clone)]
pub struct CreditServices {
    pub clock: Arc<dyn Clock>,
}
