use std::sync::Arc;

use crate::clock::Clock;

/// What the Organization rules need from outside: the time.
#[derive(Clone)]
pub struct OrganizationServices {
    pub clock: Arc<dyn Clock>,
}
