//! The hosted customer portal: `GET /portal?session=ps_…`, the seed's component as a page.
//!
//! Server-rendered (askama templates compiled into the binary) from the same use-cases the JSON
//! portal API answers from (`tabs.rs`); a little plain script (`assets/portal/portal.js`) does
//! the tabs, the customer's locale, and every action, through the JSON portal endpoints with
//! the session as Bearer. When something changes, the script fetches the changed tab again from
//! `GET /portal/tabs/{tab}`, rendered by the same template, so no rule or layout lives twice.

mod assets;
mod tabs;
mod view;

use app::portal_page::PageSession;
use app::{App, AppError};
use askama::Template;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;
use tabs::Tab;

/// What the page may load and who may frame it. Scripts, styles and requests stay on this
/// origin, except Stripe.js and its frames for merchants on Stripe. `frame-ancestors *`: the
/// portal is made to be embedded in the merchant's own pages, and framing grants an attacker
/// nothing, since the page acts only with the session token in its URL, which the framing
/// page must already hold (there is no cookie to ride on).
const CSP: &str = "default-src 'self'; script-src 'self' https://js.stripe.com; \
     style-src 'self'; img-src 'self' data:; connect-src 'self' https://api.stripe.com; \
     frame-src https://js.stripe.com https://hooks.stripe.com; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors *";

/// The page's routes, outside `/v1`: the page authenticates by the session in its URL, and
/// its assets need no credentials at all.
pub fn router() -> Router<App> {
    Router::new()
        .route("/portal", get(page))
        .route("/portal/tabs/{tab}", get(tab))
        .route("/portal/embed.js", get(assets::embed))
        .route("/portal/assets/{file}", get(assets::asset))
}

#[derive(Deserialize)]
struct PageQuery {
    session: Option<String>,
}

/// The page up to its tabs' contents: sent first, as soon as the session is known, so the
/// browser fetches the stylesheet and script while the tabs are read.
#[derive(Template)]
#[template(path = "portal/page_head.html")]
struct PageHeadTemplate<'a> {
    lang: String,
    token: &'a str,
    customer_name: Option<String>,
    customer_email: String,
    return_url: Option<String>,
    css_url: &'a str,
    js_url: &'a str,
}

/// The rest of the page: the four tabs' contents.
#[derive(Template)]
#[template(path = "portal/page_body.html")]
struct PageBodyTemplate {
    methods: String,
    invoices: String,
    payments: String,
    credits: String,
}

/// The rest of the page when its tabs could not be read (the head has gone already, with its
/// status): says so where the tabs would be.
#[derive(Template)]
#[template(path = "portal/page_failed.html")]
struct PageFailedTemplate {
    return_url: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/refused.html")]
struct RefusedTemplate<'a> {
    title: &'a str,
    message: &'a str,
    return_url: Option<String>,
    css_url: &'a str,
}

/// How many pages' tabs are read and rendered at once per process: enough to keep two cores
/// and the database busy, few enough that a new page's head never waits behind them all.
const TAB_RENDERS_AT_ONCE: usize = 4;
static TAB_RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(TAB_RENDERS_AT_ONCE);

/// `GET /portal?session=ps_…`: the portal, or a page that says why not.
async fn page(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = query.ok().and_then(|q| q.0.session).unwrap_or_default();
    let (principal, return_url) = match app.open_portal_page(token.trim()).await {
        Ok(PageSession::Open {
            principal,
            return_url,
        }) => (principal, return_url),
        Ok(PageSession::Refused { return_url }) => {
            return refused(
                StatusCode::UNAUTHORIZED,
                "This billing link has expired",
                "Billing links work for one hour and only for the customer they were made for.",
                return_url,
            )
        }
        Err(e) => return problem(ApiError::from(e), None),
    };
    let customer = match app.portal_customer(&principal, None).await {
        Ok(customer) => customer,
        Err(e) => return problem(ApiError::from(e), return_url),
    };
    let customer_id = customer.id.clone();
    let head = PageHeadTemplate {
        lang: locale(&headers),
        token: token.trim(),
        customer_name: customer.name,
        customer_email: customer.email,
        return_url: return_url.clone(),
        css_url: &assets::CSS_URL,
        js_url: &assets::JS_URL,
    }
    .render();
    let head = match head {
        Ok(head) => head,
        Err(e) => {
            return problem(ApiError::internal("Internal server error", e), return_url);
        }
    };
    // The head goes at once; the tabs follow when read (all four at the same time), a few
    // pages' tabs at a time: a busy instance keeps answering new pages' heads promptly while
    // earlier pages' tabs queue, instead of every page slowing down together.
    let rest = async move {
        let _turn = TAB_RENDERS.acquire().await;
        let body = async {
            let id = &customer_id;
            let (methods, invoices, payments, credits) = tokio::try_join!(
                Tab::Methods.render_for(&app, &principal, id),
                Tab::Invoices.render_for(&app, &principal, id),
                Tab::Payments.render_for(&app, &principal, id),
                Tab::Credits.render_for(&app, &principal, id),
            )?;
            PageBodyTemplate {
                methods,
                invoices,
                payments,
                credits,
            }
            .render()
            .map_err(|e| ApiError::internal("Internal server error", e))
        }
        .await;
        let html = match body {
            Ok(html) => html,
            // Logged where the error was made; the page says so where the tabs would be.
            Err(_) => PageFailedTemplate { return_url }
                .render()
                .unwrap_or_default(),
        };
        Ok::<_, std::convert::Infallible>(html)
    };
    let chunks = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(head) })
        .chain(futures::stream::once(rest));
    html_response(StatusCode::OK, Body::from_stream(chunks))
}

/// `GET /portal/tabs/{tab}` with the session as Bearer: one tab's contents, rendered again.
async fn tab(State(app): State<App>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let Some(tab) = Tab::parse(&name) else {
        return ApiError::for_status(StatusCode::NOT_FOUND).into_response();
    };
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    let principal = match app.open_portal_page(token).await {
        Ok(PageSession::Open { principal, .. }) => principal,
        Ok(PageSession::Refused { .. }) => {
            return ApiError::from(AppError::unauthorized(app::auth::INVALID_SESSION))
                .into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    match tab.render(&app, &principal).await {
        Ok(html) => html_response(StatusCode::OK, html),
        Err(e) => e.into_response(),
    }
}

fn refused(status: StatusCode, title: &str, message: &str, return_url: Option<String>) -> Response {
    let page = RefusedTemplate {
        title,
        message,
        return_url,
        css_url: &assets::CSS_URL,
    };
    match page.render() {
        Ok(html) => html_response(status, html),
        Err(e) => ApiError::internal("Internal server error", e).into_response(),
    }
}

/// A page for a portal that could not be shown: the customer is gone (404), or something
/// broke on our side (logged where the `ApiError` was made).
fn problem(error: ApiError, return_url: Option<String>) -> Response {
    if error.status == StatusCode::NOT_FOUND {
        return refused(
            StatusCode::NOT_FOUND,
            "This billing page is not available",
            "The account this link was made for no longer exists.",
            return_url,
        );
    }
    refused(
        error.status,
        "Billing is unavailable right now",
        "Something went wrong on our side. Please try again in a moment.",
        return_url,
    )
}

fn html_response(status: StatusCode, html: impl Into<Body>) -> Response {
    let mut response = (status, html.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    // The session token is in the page's URL: no Referer may carry it to a link's target.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The customer's language from `Accept-Language` (its first tag), for `<html lang>`, which
/// the script formats money and dates with. Only a well-formed tag is echoed.
fn locale(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|tag| tag.split(';').next().unwrap_or_default().trim())
        .filter(|tag| {
            (2..=35).contains(&tag.len())
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && tag.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        })
        .unwrap_or("en")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_language(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn the_first_language_is_the_page_s() {
        assert_eq!(locale(&with_language("de-CH,de;q=0.9,en;q=0.5")), "de-CH");
        assert_eq!(locale(&with_language("fr;q=0.8")), "fr");
    }

    #[test]
    fn a_missing_or_odd_language_is_english() {
        assert_eq!(locale(&HeaderMap::new()), "en");
        assert_eq!(locale(&with_language("*")), "en");
        assert_eq!(locale(&with_language("\"><script>")), "en");
    }
}
