//! The audit API: a customer's events, and the tenant's whole feed, as the log holds them.

use app::App;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use projections::event_store::feed::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, QueryParams};
use crate::openapi::formats;
use crate::responses::ErrorBody;

/// One event: what happened, to which aggregate, when, and who asked for it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    /// Order in the tenant's whole log; use it as `after` to read on.
    pub position: i64,
    #[schema(example = "Customer")]
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Order within the aggregate, from 1.
    pub sequence: i64,
    #[serde(rename = "type")]
    #[schema(example = "EmailChanged")]
    pub event_type: String,
    #[schema(example = "1")]
    pub version: String,
    /// The event's fields as stored for its version.
    #[schema(value_type = Object)]
    pub data: Value,
    /// `actor` (the acting key's id), `requestId`, `flowId` (the flow or keyed request that wrote
    /// it; derived from an `Idempotency-Key`, never the key), `tenant`.
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl From<StoredEvent> for EventBody {
    fn from(event: StoredEvent) -> Self {
        // Payloads are stored as `{"<type>": {fields}}`; the type already has its own field.
        let data = match event.payload {
            Value::Object(mut map) if map.len() == 1 && map.contains_key(&event.event_type) => {
                map.remove(&event.event_type).unwrap_or(Value::Null)
            }
            other => other,
        };
        Self {
            position: event.position,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            version: event.event_version,
            data,
            metadata: event.metadata,
            recorded_at: event.recorded_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsEnvelope {
    pub events: Vec<EventBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedEnvelope {
    pub events: Vec<EventBody>,
    /// True when more events are ready after this page.
    pub has_more: bool,
    /// The position to pass as `after` next: the last event's, or the one given.
    pub next_after: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Only events after this position (default 0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// A customer's events in order, deleted customers included.
#[utoipa::path(get, path = "/v1/customers/{id}/events", tag = "events",
    params(("id" = formats::CustomerId, Path, description = "Customer ID")),
    responses((status = 200, body = EventsEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn customer_events(
    State(app): State<App>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<EventsEnvelope>, ApiError> {
    let events = app.customer_events(&principal, &id).await?;
    Ok(Json(EventsEnvelope {
        events: events.into_iter().map(EventBody::from).collect(),
    }))
}

/// The tenant's whole log in order, a page at a time. Only settled events are returned, so
/// reading on from `nextAfter` never misses one.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(FeedQuery),
    responses((status = 200, body = FeedEnvelope), (status = 400, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn feed(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<FeedQuery>,
) -> Result<Json<FeedEnvelope>, ApiError> {
    let page = app.event_feed(&principal, query.after, query.limit).await?;
    let next_after = page
        .events
        .last()
        .map_or(query.after.unwrap_or(0), |e| e.position);
    Ok(Json(FeedEnvelope {
        events: page.events.into_iter().map(EventBody::from).collect(),
        has_more: page.has_more,
        next_after,
    }))
}
