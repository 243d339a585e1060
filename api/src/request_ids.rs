//! Request ids: a caller may send its own `x-request-id` (it is echoed and stored with the
//! events the request produces), but only a usable one — at most 200 visible ASCII characters.
//! Any other is dropped here, and the id layer assigns a fresh one in its place.

use axum::http::HeaderMap;

pub const HEADER: &str = "x-request-id";
/// Longer ids are replaced, not echoed or stored.
pub const MAX_LEN: usize = 200;

fn usable(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_LEN && value.iter().all(|b| b.is_ascii_graphic())
}

/// Before the id layer: removes a request id that is not [`usable`], or one of several.
pub fn drop_unusable(headers: &mut HeaderMap) {
    let mut ids = headers.get_all(HEADER).iter();
    let keep = match (ids.next(), ids.next()) {
        (None, _) => return,
        (Some(id), None) => usable(id.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(HEADER);
    }
}
