//! `POST /v1/customers/portal/sessions`: the merchant lets one customer into the portal for an
//! hour, with a token that reaches that customer only.

use axum::extract::State;
use axum::http::header::HOST;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::merchants::hash_secret;
use crate::portal_access::portal_customer;
use crate::state::AppState;

/// How long a portal session lets its customer in.
const SESSION_LIFETIME: Duration = Duration::hours(1);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSessionRequest {
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    /// Shown once: send it as `Authorization: Bearer ps_…` or open `url`.
    pub token: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionEnvelope {
    pub session: SessionBody,
}

fn random_token() -> String {
    let secret: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("ps_{secret}")
}

#[utoipa::path(post, path = "/v1/customers/portal/sessions", tag = "portal",
    request_body = CreateSessionRequest,
    responses((status = 201, body = SessionEnvelope), (status = 400, body = crate::routes::ErrorBody),
        (status = 404, body = crate::routes::ErrorBody)),
    security(("secret_key" = [])))]
pub async fn create_session(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateSessionRequest>,
) -> Result<(StatusCode, Json<SessionEnvelope>), ApiError> {
    let customer =
        portal_customer(&state, &principal, request.external_customer_id.as_deref()).await?;
    let token = random_token();
    let id = format!("pses_{}", uuid::Uuid::now_v7().simple());
    let expires_at = (Utc::now() + SESSION_LIFETIME).trunc_subsecs(6);
    sqlx::query(
        "INSERT INTO portal_sessions \
         (id, token_hash, tenant, customer_id, external_customer_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(hash_secret(&token))
    .bind(principal.tenant.key())
    .bind(&customer.id)
    .bind(customer.external_customer_id.as_deref().unwrap_or_default())
    .bind(expires_at)
    .execute(&state.pool)
    .await?;
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let url = format!("http://{host}/portal?session={token}");
    Ok((
        StatusCode::CREATED,
        Json(SessionEnvelope {
            session: SessionBody {
                token,
                url,
                expires_at,
            },
        }),
    ))
}
