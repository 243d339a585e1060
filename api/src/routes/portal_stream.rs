//! `GET /v1/customers/portal/stream`: the portal's live stream, as server-sent events. A
//! browser's `EventSource` cannot send headers, so besides the portal's usual credentials a
//! session token may come as `?session=ps_…` (a secret key never may: URLs end up in logs and
//! browser histories).

use std::convert::Infallible;

use app::portal_stream::LiveItem;
use app::App;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::extract::{Caller, QueryParams};
use crate::openapi::formats;
use crate::responses::ErrorBody;

pub const PATH: &str = "/v1/customers/portal/stream";

/// The header `EventSource` resumes with.
const LAST_EVENT_ID: &str = "last-event-id";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The merchant's own id of the customer: required with a secret key; a portal session
    /// may leave it out, or must name its own customer.
    #[param(value_type = Option<formats::ExternalCustomerId>)]
    pub external_customer_id: Option<String>,
    /// A portal session token (`ps_…`), for a browser's `EventSource`, which cannot send an
    /// `Authorization` header. Ignored when the header is sent.
    #[param(value_type = Option<String>, pattern = "^ps_[A-Za-z0-9]+$")]
    pub session: Option<String>,
    /// Where to resume, for a page that opens a new `EventSource` itself: the `id` of the last
    /// event it got. The `Last-Event-ID` header, which `EventSource` sends when it reconnects,
    /// takes precedence.
    pub last_event_id: Option<String>,
}

/// The `data` of each change event: what changed and where it stands in the log. The page
/// reads the current state from the portal's other routes; the stream only says when.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamChange {
    /// The event's position in the log; also the SSE `id`.
    pub position: i64,
    /// The SSE `event` name: `customer`, `payment_method`, `subscription`, `invoice`,
    /// `payment`, `credits` or `organization`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The aggregate that changed: `Customer`, `PaymentMethod`, `Subscription`, `Invoice`,
    /// `Payment`, `CreditLedger`, `Organization`, …
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's type, such as `PaymentMethodAdded`, `PaymentFailed` or `CreditsConsumed`.
    pub event_type: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// One server-sent event as the stream sends it (comment lines aside): the shape each event
/// of the `text/event-stream` answer has.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamEvent {
    /// The position in the log up to which the page has been told (a change's own; absent on
    /// `reload` and `lagged`): what `Last-Event-ID` resumes from.
    pub id: Option<String>,
    /// `ready`, `reload`, `lagged`, or what changed: `customer`, `payment_method`,
    /// `subscription`, `invoice`, `payment`, `credits`, `organization`.
    pub event: String,
    /// JSON: a `StreamChange` for a change, `{"position"}` for `ready`, `{"reason"}` for
    /// `reload` and `lagged`.
    pub data: String,
}

/// The short name a page listens for, by the aggregate that changed.
fn kind(aggregate_type: &str) -> &'static str {
    match aggregate_type {
        "Customer" => "customer",
        "PaymentMethod" => "payment_method",
        "Subscription" => "subscription",
        "Invoice" => "invoice",
        "Payment" => "payment",
        "CreditLedger" => "credits",
        "Organization" => "organization",
        _ => "other",
    }
}

fn sse_event(item: LiveItem) -> Event {
    match item {
        LiveItem::Change(change) => {
            let data = StreamChange {
                position: change.position,
                kind: kind(&change.aggregate_type),
                aggregate_type: change.aggregate_type.clone(),
                aggregate_id: change.aggregate_id.clone(),
                event_type: change.event_type.clone(),
                recorded_at: change.recorded_at,
            };
            Event::default()
                .id(change.position.to_string())
                .event(data.kind)
                .json_data(&data)
                .unwrap_or_default()
        }
        LiveItem::Ready { position } => Event::default()
            .id(position.to_string())
            .event("ready")
            .data(format!("{{\"position\":{position}}}")),
        LiveItem::Reload { reason } => Event::default()
            .event("reload")
            .data(format!("{{\"reason\":\"{reason}\"}}")),
        LiveItem::Lagged => Event::default()
            .event("lagged")
            .data("{\"reason\":\"lagged\"}"),
    }
}

/// Tells the page of its customer's changes as they commit, as server-sent events.
///
/// Events: first, after a `Last-Event-ID` (header, or `lastEventId`), each change the page
/// missed; then `ready` (`id` the position up to which everything was told); then one event per
/// committed change, named by what changed (`customer`, `payment_method`, `subscription`,
/// `invoice`, `payment`, `credits`, `organization`), its `id` the event's log position and its
/// `data` a `StreamChange`. `reload` says that what was missed cannot be told (an unknown
/// `Last-Event-ID`, more than 1,000 changes, or more than 100,000 positions back): read
/// everything again. `lagged` says the page read too slowly; the stream ends, and a reconnect
/// with `Last-Event-ID` resumes. A comment line is sent every 15 s while nothing happens. Every stream ends after ten minutes
/// (the credential is checked again on the reconnect).
#[utoipa::path(get, path = "/v1/customers/portal/stream", tag = "portal", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event the page got: the stream resumes after it")),
    responses((status = 200, description = "A stream of server-sent events (see above)",
            content_type = "text/event-stream", body = StreamEvent),
        (status = 400, body = ErrorBody, description = "A secret key without `externalCustomerId`"),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = []), ("portal_session" = [])))]
pub async fn stream(
    State(app): State<App>,
    Caller(principal): Caller,
    QueryParams(query): QueryParams<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let last_event_id = headers
        .get(LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id);
    let live = app
        .portal_stream(
            &principal,
            query.external_customer_id.as_deref(),
            last_event_id.as_deref(),
        )
        .await?;
    let events = live.map(|item| Ok::<_, Infallible>(sse_event(item)));
    let keep_alive = KeepAlive::new()
        .interval(app.portal_streams().heartbeat())
        .text("heartbeat");
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies that buffer responses (nginx) would hold each event back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The one query parameter the authentication looks at; the handler checks the rest.
#[derive(Deserialize)]
struct SessionOnly {
    session: Option<String>,
}

/// Lets a `?session=ps_…` in the query stand for the `Authorization` header the stream's
/// `EventSource` cannot send; authentication then goes on as for every portal route.
pub async fn session_from_query(mut request: Request) -> Request {
    if request.headers().contains_key(AUTHORIZATION) {
        return request;
    }
    let session = axum::extract::Query::<SessionOnly>::try_from_uri(request.uri())
        .ok()
        .and_then(|query| query.0.session);
    if let Some(session) = session.filter(|token| token.starts_with("ps_")) {
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {session}")) {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
    }
    request
}
