use app::AppError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Every error the API answers with: a status and a message fit for the caller, rendered as
/// `{"error": message, "code": code}`. Internal detail is logged, never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub code: &'static str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// Something broke on our side: log `detail` with the request's span, answer `message`.
    pub fn internal(message: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// The error answered for a status that carries no body of its own (axum's 404, 405, ...).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "Not found"),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("payload_too_large", "Request body is larger than 1 MiB")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "Request body must be JSON")
            }
            StatusCode::REQUEST_TIMEOUT => ("timeout", "Request timed out"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "Too many requests"),
            s if s.is_server_error() => ("internal_error", "Internal server error"),
            _ => ("invalid_request", "Bad request"),
        };
        Self::new(status, code, message)
    }
}

/// Each kind of the application's error has its status; the code and message go as they are.
/// (Internal detail was logged where it arose.)
impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid { code, message } => {
                Self::new(StatusCode::BAD_REQUEST, code, message)
            }
            AppError::Unauthorized(message) => Self::unauthorized(message),
            AppError::PaymentFailed { code, message } => Self {
                status: StatusCode::PAYMENT_REQUIRED,
                code: payment_code(&code),
                message,
            },
            AppError::NotFound(message) => Self::not_found(message),
            AppError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            AppError::Provider { code, message } => {
                Self::new(StatusCode::BAD_GATEWAY, code, message)
            }
            AppError::Internal(message) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
            }
        }
    }
}

/// A payment refusal's code as the API answers it: the codes we know by name, or the generic
/// decline.
fn payment_code(code: &str) -> &'static str {
    match code {
        "expired_card" => "expired_card",
        "insufficient_funds" => "insufficient_funds",
        "incorrect_cvc" => "incorrect_cvc",
        _ => "card_declined",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.message, "code": self.code }));
        (self.status, body).into_response()
    }
}
