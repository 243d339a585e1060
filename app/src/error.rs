//! The one error every use-case returns. Each kind is something a caller can act on; the HTTP
//! layer gives each its status. Internal detail is logged where it arises, never carried out.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// The request is malformed or breaks a rule of its own (400).
    Invalid { code: &'static str, message: String },
    /// No valid credentials (401).
    Unauthorized(String),
    /// A payment or card was refused (402), with the provider's code.
    PaymentFailed { code: String, message: String },
    /// Nothing of the caller's by that id (404): another tenant's objects included.
    NotFound(String),
    /// The request conflicts with the state of things (409), with its reason.
    Conflict { code: &'static str, message: String },
    /// A payment provider failed or refused a call (502).
    Provider { code: &'static str, message: String },
    /// Something broke on our side (500); the detail went to the log.
    Internal(String),
}

impl AppError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            code: "invalid_request",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            code: "conflict",
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }

    /// Something broke on our side: log `detail` in the current span, answer `message`.
    pub fn internal(message: impl Into<String>, detail: impl fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::Internal(message.into())
    }

    /// A provider failed or refused a call: the caller is told which provider and what failed,
    /// never the provider's answer (it may quote our request); the detail goes to the log.
    pub fn provider_failed(provider: &str, action: &str, detail: impl fmt::Display) -> Self {
        tracing::warn!(provider, action, error = %detail, "payment provider call failed");
        Self::Provider {
            code: "provider_error",
            message: format!("{provider} could not {action}; try again later"),
        }
    }

    /// The message the caller sees.
    pub fn message(&self) -> &str {
        match self {
            Self::Invalid { message, .. }
            | Self::PaymentFailed { message, .. }
            | Self::Conflict { message, .. }
            | Self::Provider { message, .. } => message,
            Self::Unauthorized(message) | Self::NotFound(message) | Self::Internal(message) => {
                message
            }
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AppError {}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::internal("Internal server error", error)
    }
}
