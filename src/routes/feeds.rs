//! The Atom feeds over HTTP: `GET /feed/recent.atom` and
//! `GET /feed/thread.atom?uri=/path/` (and `HEAD`, which the server answers
//! for every `GET`). What a feed says is `crate::feeds`'s; this module parses
//! the query, and answers with the ETag (`If-None-Match` gives `304`) and the
//! headers every public answer carries.
//!
//! No CORS here: feed readers are not browsers running a blog's scripts, and
//! the feeds hold nothing the widget's own read does not.

use std::sync::Arc;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::{etag_listed, header_value, query_pairs, raw_query, with_state};
use super::method_not_allowed;
use crate::domain::ThreadUri;
use crate::error::{ApiError, respond};
use crate::feeds;
use crate::state::AppState;
use crate::thread_cache::CachedPage;

/// A feed shows as text if a browser opens it, and runs nothing.
const FEED_CSP: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let recent = warp::path!("feed" / "recent.atom")
        .and(recent(state.clone()).or(method_not_allowed("GET, HEAD")).unify());
    let thread =
        warp::path!("feed" / "thread.atom").and(thread(state).or(method_not_allowed("GET, HEAD")).unify());
    recent.or(thread).unify().boxed()
}

/// GET /feed/recent.atom
fn recent(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state))
        .and(header_value("if-none-match"))
        .then(
            |state: Arc<AppState>, if_none_match: Option<HeaderValue>| async move {
                let page = feeds::recent(&state).await?;
                Ok(feed_response(&page, if_none_match))
            },
        )
        .map(respond)
        .boxed()
}

/// GET /feed/thread.atom?uri=/path/
fn thread(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state))
        .and(raw_query())
        .and(header_value("if-none-match"))
        .then(
            |state: Arc<AppState>, raw_query: String, if_none_match: Option<HeaderValue>| async move {
                let uri = thread_uri(&raw_query)?;
                let page = feeds::thread(&state, &uri).await?;
                Ok(feed_response(&page, if_none_match))
            },
        )
        .map(respond)
        .boxed()
}

/// The `uri` of the query, parsed as the thread read parses it (400 when it
/// is missing or no thread uri).
fn thread_uri(raw_query: &str) -> Result<ThreadUri, ApiError> {
    let pairs = query_pairs(raw_query)?;
    let uri = pairs
        .iter()
        .find(|(key, _)| key == "uri")
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| ApiError::BadRequest("the uri query parameter is required".into()))?;
    ThreadUri::parse(uri).map_err(|message| ApiError::BadRequest(format!("uri {message}")))
}

/// The feed, or `304` when the client holds it already.
fn feed_response(page: &CachedPage, if_none_match: Option<HeaderValue>) -> Result<Response, ApiError> {
    let etag = page.etag.to_str().unwrap_or_default();
    let mut response = if if_none_match.is_some_and(|value| etag_listed(&value, etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(page.body.clone().into());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(feeds::CONTENT_TYPE));
        response
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, page.etag.clone());
    // As the thread read: caches may keep it but must ask every time, so a
    // moderation action shows at once.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("content-security-policy", HeaderValue::from_static(FEED_CSP));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_feed_needs_a_valid_uri() {
        assert_eq!(thread_uri("uri=%2Fposts%2Fa%2F").unwrap().as_str(), "/posts/a/");
        assert!(matches!(thread_uri(""), Err(ApiError::BadRequest(_))));
        assert!(matches!(thread_uri("url=/a/"), Err(ApiError::BadRequest(_))));
        assert!(matches!(thread_uri("uri=posts"), Err(ApiError::BadRequest(_))));
        assert!(matches!(thread_uri("uri=%2Fa%20b"), Err(ApiError::BadRequest(_))));
    }
}
