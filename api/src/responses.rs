//! Answers shared by every resource.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"success": true}`, the seed's answer to a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub fn yes() -> axum::Json<Self> {
        axum::Json(Self { success: true })
    }
}

/// Every error: `{"error": "...", "code": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "Customer not found or access denied")]
    pub error: String,
    #[schema(example = "not_found")]
    pub code: String,
}
