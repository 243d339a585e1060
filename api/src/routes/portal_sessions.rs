//! `POST /v1/customers/portal/sessions`: the merchant lets one customer into the portal for an
//! hour, with a token that reaches that customer only.

use app::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::openapi::formats;
use crate::responses::ErrorBody;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// The customer the session lets in.
    #[schema(value_type = formats::ExternalCustomerId, required = true)]
    pub external_customer_id: Option<String>,
    /// The merchant's page the hosted portal links back to (an absolute http or https URL),
    /// also shown when the session has expired.
    #[schema(
        format = "uri",
        max_length = 2048,
        example = "https://example.com/account"
    )]
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    /// Shown once: send it as `Authorization: Bearer ps_…` or open `url`.
    pub token: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEnvelope {
    pub session: SessionBody,
}

#[utoipa::path(post, path = "/v1/customers/portal/sessions", tag = "portal",
    request_body = CreateSessionRequest,
    responses((status = 201, body = SessionEnvelope), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_session(
    State(app): State<App>,
    Caller(principal): Caller,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> Result<(StatusCode, Json<SessionEnvelope>), ApiError> {
    let session = app
        .create_portal_session_returning(
            &principal,
            request.external_customer_id.as_deref(),
            request.return_url.as_deref(),
        )
        .await?;
    let url = format!("{}/portal?session={}", app.public_url(), session.token);
    Ok((
        StatusCode::CREATED,
        Json(SessionEnvelope {
            session: SessionBody {
                token: session.token,
                url,
                expires_at: session.expires_at,
                return_url: session.return_url,
            },
        }),
    ))
}
