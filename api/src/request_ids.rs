//! Request ids: a caller may send its own `x-request-id` (it is echoed and stored with the
//! events the request produces), but only a usable one — at most 200 visible ASCII characters.
//! Any other is dropped here, and the id layer assigns a fresh one in its place.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";
/// Longer ids are replaced, not echoed or stored.
pub const MAX_LEN: usize = 200;

fn usable(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_LEN && value.iter().all(|b| b.is_ascii_graphic())
}

/// Middleware, before the id layer: removes a request id that is not [`usable`].
pub async fn drop_unusable(mut request: Request, next: Next) -> Response {
    let unusable = request
        .headers()
        .get_all(HEADER)
        .iter()
        .any(|value| !usable(value.as_bytes()));
    if unusable || request.headers().get_all(HEADER).iter().count() > 1 {
        request.headers_mut().remove(HEADER);
    }
    next.run(request).await
}
