//! Page sizes of the billing lists (invoices, payments, the portal's tabs): 10 unless asked,
//! at most 100.

use crate::error::ApiError;

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;

/// The page size `limit` asks for.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::bad_request("limit must be between 1 and 100")),
    }
}
