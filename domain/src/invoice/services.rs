use std::sync::Arc;

use crate::clock::Clock;

/// What the Invoice rules need from outside: the time.
#[derive(Clone)]
pub struct InvoiceServices {
    pub clock: Arc<dyn Clock>,
}
