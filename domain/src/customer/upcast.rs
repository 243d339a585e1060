//! Upcasters of the Customer's events: each turns a stored older version into the shape the
//! current code reads. Events are never rewritten in the log; they are upcast on every read.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

use crate::customer::CustomerEvent;

/// `SoftDeleted` v1 (`{"at"}`) → v2 (`{"at", "canceledSubscriptions"}`): a customer deleted
/// before cascading deletes existed canceled nothing on the way.
pub struct SoftDeletedV1ToV2;

impl EventUpcaster for SoftDeletedV1ToV2 {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == CustomerEvent::SOFT_DELETED && event_version == "1"
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        if let Some(Value::Object(fields)) = event.payload.get_mut(CustomerEvent::SOFT_DELETED) {
            fields
                .entry("canceledSubscriptions")
                .or_insert_with(|| Value::Array(Vec::new()));
        }
        event.event_version = "2".to_owned();
        event
    }
}
