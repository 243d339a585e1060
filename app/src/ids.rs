//! One parser for every id a request names: a malformed id is a 400 that says what was expected.

use domain::id::PrefixedId;

use crate::error::AppError;

/// `value` as an id of kind `T`, or the 400 that names the kind and its prefix.
pub fn parse_id<T: PrefixedId>(value: &str) -> Result<T, AppError> {
    T::parse(value).map_err(|_| {
        AppError::invalid(format!(
            "Invalid {} ID: expected \"{}\" followed by letters, digits or underscores",
            T::KIND,
            T::PREFIX
        ))
    })
}

/// A required id field of a body: present, not blank, and well formed.
pub fn required_id<T: PrefixedId>(value: Option<&str>, field: &str) -> Result<T, AppError> {
    let value = value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| AppError::invalid(format!("{field} is required")))?;
    parse_id(value)
}
