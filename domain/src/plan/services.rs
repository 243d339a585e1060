use std::sync::Arc;

use crate::clock::Clock;

/// What the Plan rules need from outside: the time.
#[derive(Clone)]
pub struct PlanServices {
    pub clock: Arc<dyn Clock>,
}
