//! Page sizes of the billing lists (invoices, payments, the portal's tabs), as every list of
//! the service takes them: `limit` 1 to 1000, and without it the whole list
//! (`streamed_list.rs`).

use crate::error::ApiError;

const MAX_LIMIT: i64 = 1000;

/// The page size `limit` asks for; `None` for the whole list.
pub fn page_limit(limit: Option<i64>) -> Result<Option<i64>, ApiError> {
    match limit {
        None => Ok(None),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(Some(limit)),
        Some(_) => Err(ApiError::bad_request("limit must be between 1 and 1000")),
    }
}
