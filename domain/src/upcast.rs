//! Event schema evolution. A stored event keeps the shape it was written in; whoever reads the
//! log passes each event through [`upcast`] first, which applies every upcaster that knows its
//! (type, version) until none does, so a v1 event reads as the current version.
//!
//! Event type names are unique across aggregates, so an upcaster is chosen by type and version
//! alone.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};

use crate::customer::upcast::SoftDeletedV1ToV2;

/// Every upcaster, in the order the schema changed.
static UPCASTERS: &[&dyn EventUpcaster] = &[&SoftDeletedV1ToV2];

/// The event as the current code reads it.
pub fn upcast(mut event: SerializedEvent) -> SerializedEvent {
    while let Some(upcaster) = UPCASTERS
        .iter()
        .find(|u| u.can_upcast(&event.event_type, &event.event_version))
    {
        event = upcaster.upcast(event);
    }
    event
}

/// Whether `upcast` would change an event of this type and version.
pub fn is_outdated(event_type: &str, event_version: &str) -> bool {
    UPCASTERS
        .iter()
        .any(|u| u.can_upcast(event_type, event_version))
}

/// The payload of an event of `event_type` stored as `event_version`, as the current code reads
/// it; for readers that hold only these three columns.
pub fn upcast_payload(
    event_type: &str,
    event_version: &str,
    payload: serde_json::Value,
) -> serde_json::Value {
    if !is_outdated(event_type, event_version) {
        return payload;
    }
    let stored = SerializedEvent {
        aggregate_id: String::new(),
        sequence: 0,
        aggregate_type: String::new(),
        event_type: event_type.to_owned(),
        event_version: event_version.to_owned(),
        payload,
        metadata: serde_json::Value::Null,
    };
    upcast(stored).payload
}
