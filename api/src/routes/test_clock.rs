//! Test clocks (test mode only): `GET /v1/test-clock` and `POST /v1/test-clock/advance`, which
//! moves the tenant's clock forward and answers once everything that fell due on the way was
//! done, in time order.

use app::App;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Actor, Caller, JsonBody};
use crate::responses::ErrorBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct TestClockBody {
    pub now: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestClockEnvelope {
    pub test_clock: TestClockBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceRequest {
    /// ISO 8601; not before the clock's now.
    #[schema(required = true)]
    pub to: Option<DateTime<Utc>>,
}

/// The test-mode tenant's clock.
#[utoipa::path(get, path = "/v1/test-clock", tag = "test clock",
    responses((status = 200, body = TestClockEnvelope),
        (status = 404, body = ErrorBody, description = "A live key: test clocks exist only in test mode")),
    security(("secret_key" = [])))]
pub async fn get_test_clock(
    State(app): State<App>,
    Caller(principal): Caller,
) -> Result<Json<TestClockEnvelope>, ApiError> {
    let now = app.test_clock(&principal)?;
    Ok(Json(TestClockEnvelope {
        test_clock: TestClockBody { now },
    }))
}

/// Move the test-mode tenant's clock forward to `to`, doing everything that falls due on the
/// way (renewals, retries, grace ends) in time order; answers when done.
#[utoipa::path(post, path = "/v1/test-clock/advance", tag = "test clock",
    request_body = AdvanceRequest,
    responses((status = 200, body = TestClockEnvelope),
        (status = 400, body = ErrorBody, description = "`to` is missing or before the clock's now"),
        (status = 404, body = ErrorBody, description = "A live key: test clocks exist only in test mode")),
    security(("secret_key" = [])))]
pub async fn advance_test_clock(
    State(app): State<App>,
    Actor(metadata): Actor,
    JsonBody(body): JsonBody<AdvanceRequest>,
) -> Result<Json<TestClockEnvelope>, ApiError> {
    // A live key learns that clocks are a test-mode thing before anything about its body.
    app.test_clock(&metadata.principal)?;
    let to = body
        .to
        .ok_or_else(|| ApiError::bad_request("to is required (an ISO 8601 date-time)"))?;
    let now = app.advance_test_clock(&metadata.principal, to).await?;
    Ok(Json(TestClockEnvelope {
        test_clock: TestClockBody { now },
    }))
}
