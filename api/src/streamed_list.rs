//! Lists as the service's convention says: a page of `limit` with `hasMore`, or without
//! `limit` the whole list, as the seed's "get all" does, read and written a page at a time,
//! so a list of any length costs the server one page of memory.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::Serialize;

use app::AppError;

use crate::error::ApiError;

/// Rows read per page of a whole list.
pub const STREAM_PAGE: i64 = 500;

/// Every page of a keyset-paged list after `starting_after`: `fetch(cursor, size)` reads one
/// page and says whether more follow; `id_of` names the cursor after an item. The first page
/// is read before answering, so a refusal (a bad cursor, an unknown customer) is still an
/// error status, not a body cut short.
pub async fn all_pages<T, F, Fut>(
    starting_after: Option<String>,
    fetch: F,
    id_of: fn(&T) -> String,
) -> Result<impl Stream<Item = Result<Vec<T>, AppError>> + Send + 'static, AppError>
where
    T: Send + 'static,
    F: Fn(Option<String>, i64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<T>, bool), AppError>> + Send + 'static,
{
    let next_cursor = move |page: &[T], more: bool| match page.last() {
        Some(last) if more => Some(id_of(last)),
        _ => None,
    };
    let (first, more) = fetch(starting_after, STREAM_PAGE).await?;
    let after_first = next_cursor(&first, more);
    let fetch = Arc::new(fetch);
    // The state is the next page's cursor; `None` once the last page was read.
    let rest = futures::stream::try_unfold(after_first, move |cursor| {
        let fetch = fetch.clone();
        async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let (page, more) = fetch(Some(cursor), STREAM_PAGE).await?;
            let next = next_cursor(&page, more);
            Ok(Some((page, next)))
        }
    });
    Ok(futures::stream::once(async move { Ok(first) }).chain(rest))
}

/// `{"<name>":[…],"hasMore":false}`, written as the pages arrive. A failure after the first
/// bytes can only cut the body short (the status is sent): the client sees invalid JSON, and
/// the log says why.
pub fn streamed_list<T: Serialize>(
    name: &'static str,
    pages: impl Stream<Item = Result<Vec<T>, AppError>> + Send + 'static,
) -> Response {
    let listed_any = Arc::new(AtomicBool::new(false));
    let items = {
        let listed_any = listed_any.clone();
        pages.map(move |page| {
            let page =
                page.inspect_err(|e| tracing::error!(error = %e, "a streamed list failed"))?;
            let mut chunk = Vec::new();
            for item in page {
                let separator = if listed_any.swap(true, Ordering::Relaxed) {
                    b','
                } else {
                    b'['
                };
                chunk.push(separator);
                serde_json::to_writer(&mut chunk, &item)
                    .map_err(|e| AppError::internal("Internal server error", e))?;
            }
            Ok::<_, AppError>(Bytes::from(chunk))
        })
    };
    // Runs after the last page: it knows whether the array was opened.
    let close = futures::stream::once(async move {
        let close: &'static [u8] = if listed_any.load(Ordering::Relaxed) {
            b"],\"hasMore\":false}"
        } else {
            b"[],\"hasMore\":false}"
        };
        Ok(Bytes::from_static(close))
    });
    let open = futures::stream::once(async move { Ok(Bytes::from(format!("{{\"{name}\":"))) });
    (
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(open.chain(items).chain(close)),
    )
        .into_response()
}

/// `{"<name>": […], "hasMore": …}`: the page of `limit` after `starting_after` that `fetch`
/// reads, or without a limit every page, streamed.
pub async fn paged_list<T, F, Fut>(
    name: &'static str,
    limit: Option<i64>,
    starting_after: Option<String>,
    fetch: F,
    id_of: fn(&T) -> String,
) -> Result<Response, ApiError>
where
    T: Serialize + Send + 'static,
    F: Fn(Option<String>, i64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(Vec<T>, bool), AppError>> + Send + 'static,
{
    let Some(limit) = limit else {
        let pages = all_pages(starting_after, fetch, id_of).await?;
        return Ok(streamed_list(name, pages));
    };
    let (items, has_more) = fetch(starting_after, limit).await?;
    let mut envelope = serde_json::Map::new();
    envelope.insert(
        name.to_owned(),
        serde_json::to_value(items).map_err(|e| AppError::internal("Internal server error", e))?,
    );
    envelope.insert("hasMore".to_owned(), has_more.into());
    Ok(Json(envelope).into_response())
}
