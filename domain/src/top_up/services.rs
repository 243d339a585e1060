use std::sync::Arc;

use crate::clock::Clock;

/// What the top-up rules need from outside: the time.
#[derive(Clone)]
pub struct TopUpServices {
    pub clock: Arc<dyn Clock>,
}
