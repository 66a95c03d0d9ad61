//! The public API the widget calls: submit a comment, read a thread, count
//! comments. CORS applies here (and only here) per `ALLOWED_ORIGINS`.
//!
//! Nothing here ever publishes a pending, rejected or spam comment, nor an
//! email, IP or user agent: the responses are built from `PublicComment`,
//! which has no such fields.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{CACHE_CONTROL, ETAG, LOCATION, REFERER, VARY};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::{
    client_ip, etag_listed, header_value, limited_body, query_pairs, raw_query, with_state,
};
use super::submission::{SubmissionFormat, parse_submission};
use super::{json_response, method_not_allowed};
use crate::comments;
use crate::config::Site;
use crate::domain::{CommentId, PublicComment, Status, ThreadUri};
use crate::error::{ApiError, respond};
use crate::state::AppState;
use crate::thread_cache::CachedPage;

/// Comments per thread page when the widget does not say.
pub const DEFAULT_THREAD_LIMIT: u32 = 200;
/// Larger `limit`s are clamped to this.
pub const MAX_THREAD_LIMIT: u32 = 1000;
/// Most uris one counts request may ask for.
pub const MAX_COUNT_URIS: usize = 100;
/// What a reader is told after submitting.
pub const PENDING_MESSAGE: &str = "Your comment is awaiting moderation.";

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let cors = cors(&state.allowed_origins);
    let site = Arc::new(state.site.clone());
    let comments = submit(state.clone())
        .or(thread(state.clone()))
        .unify()
        .or(method_not_allowed("GET, HEAD, POST"))
        .unify()
        .boxed();
    let counts = counts(state).or(method_not_allowed("GET, HEAD")).unify().boxed();
    let comments = warp::path!("api" / "comments").and(with_cors(comments, cors.clone(), site.clone()));
    let counts = warp::path!("api" / "counts").and(with_cors(counts, cors, site));
    comments.or(counts).unify().map(vary_on_origin).boxed()
}

/// Every answer here depends on `Origin` (CORS headers echo it, and a page
/// of the service itself gets none), so shared caches must key on it, 304s
/// and preflights included; warp's CORS wrapper does not say so itself.
fn vary_on_origin(mut response: Response) -> Response {
    response
        .headers_mut()
        .append(VARY, HeaderValue::from_static("origin"));
    response
}

/// Cross-origin requests go through the CORS check; pages of the service
/// itself (the `/demo` page) need none, and browsers send `Origin` on every
/// POST, so they must not be refused for it. "The service itself" is the
/// public URL's origin ([`Site::is_public_origin`]), never the `Host` header.
fn with_cors(
    routes: BoxedFilter<(Response,)>,
    cors: warp::cors::Builder,
    site: Arc<Site>,
) -> BoxedFilter<(Response,)> {
    let same_origin = header_value("origin")
        .and_then(move |origin: Option<HeaderValue>| {
            let own = origin
                .as_ref()
                .and_then(|origin| origin.to_str().ok())
                .is_some_and(|origin| site.is_public_origin(origin));
            async move {
                if own {
                    Ok(())
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .untuple_one();
    same_origin
        .and(routes.clone())
        .or(routes.with(cors).map(Reply::into_response))
        .unify()
        .boxed()
}

/// CORS for the blog's origins. The CORS wrapper sits inside each path, so a
/// preflight is only answered for the public paths, never for admin ones.
fn cors(origins: &[String]) -> warp::cors::Builder {
    let builder = warp::cors()
        .allow_methods(["GET", "POST"])
        .allow_header("content-type")
        .expose_header("retry-after")
        .max_age(600);
    if origins.is_empty() {
        builder.allow_any_origin()
    } else {
        builder.allow_origins(origins.iter().map(String::as_str))
    }
}

/// POST /api/comments
fn submit(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::post()
        .and(with_state(state.clone()))
        .and(client_ip(state))
        .and(warp::header::headers_cloned())
        .and(limited_body())
        .then(|state, client, headers: HeaderMap, body| async move {
            let wants_page = prefers_html(&headers);
            match submit_comment(state, client, headers, body).await {
                Ok(response) => response,
                // A browser posting the plain form (no JavaScript) gets a page
                // it can show, with the same status; everyone else gets JSON.
                Err(error) if wants_page => error_page(error),
                Err(error) => error.into_response(),
            }
        })
        .boxed()
}

/// True for a form post from a browser navigating (no JavaScript): it sent a
/// urlencoded body and asks for HTML.
fn prefers_html(headers: &HeaderMap) -> bool {
    let accepts_html = headers
        .get(warp::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    accepts_html && SubmissionFormat::from_headers(headers).ok() == Some(SubmissionFormat::Form)
}

/// The error as a small page: what went wrong, field by field, and a way back.
fn error_page(error: ApiError) -> Response {
    let status = error.status();
    let mut items = String::new();
    match &error {
        ApiError::Validation(fields) => {
            for (field, message) in fields {
                items.push_str(&format!(
                    "<li><strong>{}</strong> {}</li>",
                    ammonia::clean_text(field),
                    ammonia::clean_text(message)
                ));
            }
        }
        other => items.push_str(&format!("<li>{}</li>", ammonia::clean_text(&other.to_string()))),
    }
    let retry = match &error {
        ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>Comment not sent</title>\
         <p>Your comment was not sent:</p><ul>{items}</ul>\
         <p>Go back, correct it and send it again.</p></html>"
    );
    let mut response = warp::reply::with_status(warp::reply::html(page), status).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    if let Some(seconds) = retry {
        headers.insert(warp::http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The 202 answer: the comment as the public will see it once approved.
#[derive(Serialize)]
struct Submitted<'a> {
    #[serde(flatten)]
    comment: PublicComment,
    uri: &'a str,
    status: Status,
    message: &'static str,
}

async fn submit_comment(
    state: Arc<AppState>,
    client: IpAddr,
    headers: HeaderMap,
    body: Result<Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let format = SubmissionFormat::from_headers(&headers)?;
    let body = body?;
    let new_comment = parse_submission(format, &body, client, &headers)?;
    let stored = comments::submit(&state, client, new_comment).await?;

    match format {
        SubmissionFormat::Json => Ok(json_response(
            &Submitted {
                comment: stored.to_public(true),
                uri: &stored.uri,
                status: stored.status,
                message: PENDING_MESSAGE,
            },
            StatusCode::ACCEPTED,
        )),
        SubmissionFormat::Form => Ok(form_success(&headers, &state.allowed_origins, &state.site)),
    }
}

/// A plain form post goes back to the page it came from (its `Referer`), but
/// only when that page's origin (scheme, host and port) is an allowed origin
/// or the public URL's; otherwise a small page says what happened. Never a
/// redirect anywhere else, whatever the `Host` header says.
fn form_success(headers: &HeaderMap, allowed_origins: &[String], site: &Site) -> Response {
    let back = headers
        .get(REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| url::Url::parse(referer).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .filter(|url| {
            let origin = url.origin().ascii_serialization();
            allowed_origins.contains(&origin) || site.is_public_origin(&origin)
        });
    if let Some(url) = back
        && let Ok(location) = HeaderValue::from_str(url.as_str())
    {
        let mut response = StatusCode::SEE_OTHER.into_response();
        response.headers_mut().insert(LOCATION, location);
        return response;
    }
    let page = warp::reply::html(concat!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width\">",
        "<title>Comment received</title>",
        "<p>Thank you. Your comment is awaiting moderation.</p>",
        "<p>You can go back to the page you came from.</p></html>"
    ));
    let mut response = warp::reply::with_status(page, StatusCode::ACCEPTED).into_response();
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    response
}

/// GET /api/comments?uri=/path/&limit=N&after=CURSOR
fn thread(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state))
        .and(raw_query())
        .and(header_value("if-none-match"))
        .then(read_thread)
        .map(respond)
        .boxed()
}

#[derive(Serialize)]
struct Thread<'a> {
    uri: &'a str,
    total: i64,
    next: Option<String>,
    comments: &'a [PublicComment],
}

/// The query of a thread read.
struct ThreadQuery {
    uri: ThreadUri,
    limit: u32,
    after: Option<CommentId>,
}

impl ThreadQuery {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let pairs = query_pairs(raw)?;
        let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let uri =
            value("uri").ok_or_else(|| ApiError::BadRequest("the uri query parameter is required".into()))?;
        let uri = ThreadUri::parse(uri).map_err(|message| ApiError::BadRequest(format!("uri {message}")))?;
        Ok(Self {
            uri,
            limit: parse_limit(value("limit"), DEFAULT_THREAD_LIMIT, MAX_THREAD_LIMIT)?,
            after: parse_cursor(value("after"))?,
        })
    }
}

/// `limit`: a positive integer, clamped to `max` however many digits it has.
pub(crate) fn parse_limit(value: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let text = match value {
        None | Some("") => return Ok(default),
        Some(text) => text,
    };
    let positive = || ApiError::BadRequest("limit must be a positive integer".into());
    if !text.bytes().all(|byte| byte.is_ascii_digit()) || text.bytes().all(|byte| byte == b'0') {
        return Err(positive());
    }
    // All digits and not zero: too large for u64 is merely larger than `max`.
    Ok(text
        .parse::<u64>()
        .map_or(max, |limit| limit.min(u64::from(max)) as u32))
}

/// `after`: the opaque `next` of a previous page (an id, today).
pub(crate) fn parse_cursor(value: Option<&str>) -> Result<Option<CommentId>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<CommentId>()
            .ok()
            .filter(|id| *id >= 0)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("after must be the next cursor of a previous page".into())),
    }
}

async fn read_thread(
    state: Arc<AppState>,
    raw_query: String,
    if_none_match: Option<HeaderValue>,
) -> Result<Response, ApiError> {
    let query = ThreadQuery::parse(&raw_query)?;
    let key = (query.after, query.limit);
    let page = match state.threads.get(query.uri.as_str(), key) {
        Some(page) => page,
        None => {
            let epoch = state.threads.epoch();
            match render_thread(&state, &query).await {
                Ok(page) => {
                    let page = Arc::new(page);
                    state.threads.insert(query.uri.as_str(), key, page.clone(), epoch);
                    page
                }
                // The database is down: the last page read, if there is one,
                // beats an error (see `ThreadCache::last_known`).
                Err(error @ ApiError::Unavailable(_)) => {
                    state.threads.last_known(query.uri.as_str(), key).ok_or(error)?
                }
                Err(error) => return Err(error),
            }
        }
    };
    let etag = page.etag.to_str().unwrap_or_default();
    let mut response = if if_none_match.is_some_and(|value| etag_listed(&value, etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(page.body.clone().into());
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        response
    };
    let response_headers = response.headers_mut();
    response_headers.insert(ETAG, page.etag.clone());
    // Caches may keep it but must ask every time: moderation shows at once.
    response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Reads a page of the thread from the database and serializes it once.
async fn render_thread(state: &AppState, query: &ThreadQuery) -> Result<CachedPage, ApiError> {
    let page = state
        .store
        .approved_thread(&query.uri, query.after, query.limit)
        .await?;
    let body = serde_json::to_vec(&Thread {
        uri: query.uri.as_str(),
        total: page.total,
        next: page.next.map(|id| id.to_string()),
        comments: &page.comments,
    })
    .map_err(|error| ApiError::Internal(error.into()))?;
    // The ETag is a digest of the exact bytes, so any moderation action that
    // changes what this page shows changes it too.
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let etag = HeaderValue::from_str(&etag).map_err(|error| ApiError::Internal(error.into()))?;
    Ok(CachedPage {
        body: body.into(),
        etag,
    })
}

/// GET /api/counts?uri=/a/&uri=/b/
fn counts(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state))
        .and(raw_query())
        .then(count_comments)
        .map(respond)
        .boxed()
}

async fn count_comments(state: Arc<AppState>, raw_query: String) -> Result<Response, ApiError> {
    let mut uris: Vec<ThreadUri> = Vec::new();
    for (key, value) in query_pairs(&raw_query)? {
        if key != "uri" {
            continue;
        }
        let uri =
            ThreadUri::parse(&value).map_err(|message| ApiError::BadRequest(format!("uri {message}")))?;
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    if uris.is_empty() {
        return Err(ApiError::BadRequest(
            "at least one uri query parameter is required".into(),
        ));
    }
    if uris.len() > MAX_COUNT_URIS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_COUNT_URIS} uris per request"
        )));
    }
    let found = state.store.approved_counts(&uris).await?;
    let counts: BTreeMap<&str, i64> = uris
        .iter()
        .map(|uri| (uri.as_str(), found.get(uri.as_str()).copied().unwrap_or(0)))
        .collect();
    Ok(json_response(&counts, StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_clamp_and_refuse_nonsense() {
        assert_eq!(parse_limit(None, 200, 1000).unwrap(), 200);
        assert_eq!(parse_limit(Some("5"), 200, 1000).unwrap(), 5);
        assert_eq!(parse_limit(Some("99999999999"), 200, 1000).unwrap(), 1000);
        assert!(parse_limit(Some("0"), 200, 1000).is_err());
        assert!(parse_limit(Some("-1"), 200, 1000).is_err());
        assert!(parse_limit(Some("ten"), 200, 1000).is_err());
        assert!(parse_limit(Some("000"), 200, 1000).is_err());
        assert!(parse_limit(Some("+5"), 200, 1000).is_err());
        assert!(parse_limit(Some("5.0"), 200, 1000).is_err());
    }

    #[test]
    fn limits_beyond_u64_are_clamped_too() {
        assert_eq!(
            parse_limit(Some("99999999999999999999999"), 200, 1000).unwrap(),
            1000
        );
        assert_eq!(
            parse_limit(Some("0000000000000000000000007"), 200, 1000).unwrap(),
            7
        );
    }

    #[test]
    fn form_posts_only_redirect_to_allowed_origins() {
        let site = service_at("https://comments.example");
        let allowed = vec!["https://blog.example".to_owned()];
        let mut headers = HeaderMap::new();
        headers.insert(REFERER, "https://blog.example/post/1".parse().unwrap());
        let response = form_success(&headers, &allowed, &site);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "https://blog.example/post/1");

        for elsewhere in [
            "https://evil.example/post/1",
            "https://blog.example.evil.example/",
            // The scheme and the port are part of the origin.
            "http://blog.example/post/1",
            "https://blog.example:8443/post/1",
        ] {
            headers.insert(REFERER, elsewhere.parse().unwrap());
            let response = form_success(&headers, &allowed, &site);
            assert_eq!(response.status(), StatusCode::ACCEPTED, "{elsewhere}");
        }
        // With no allow-list there is nothing to trust a Referer against…
        headers.insert(REFERER, "https://blog.example/post/1".parse().unwrap());
        assert_eq!(form_success(&headers, &[], &site).status(), StatusCode::ACCEPTED);
    }

    /// Found when the service was tried as an attacker would: `Host:
    /// evil.example` plus a matching `Referer` redirected there.
    #[test]
    fn the_service_itself_is_its_public_url_never_the_host_header() {
        let site = service_at("https://comments.example");
        let mut headers = HeaderMap::new();
        headers.insert("host", "evil.example".parse().unwrap());
        headers.insert(REFERER, "https://evil.example/phish".parse().unwrap());
        assert_eq!(form_success(&headers, &[], &site).status(), StatusCode::ACCEPTED);
        headers.insert(REFERER, "http://evil.example/phish".parse().unwrap());
        assert_eq!(form_success(&headers, &[], &site).status(), StatusCode::ACCEPTED);

        // A page of the service itself (the demo) is safe to go back to.
        headers.insert(REFERER, "https://comments.example/demo".parse().unwrap());
        let response = form_success(&headers, &[], &site);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "https://comments.example/demo");
        // …but not the same host over another scheme.
        headers.insert(REFERER, "http://comments.example/demo".parse().unwrap());
        assert_eq!(form_success(&headers, &[], &site).status(), StatusCode::ACCEPTED);
    }

    fn service_at(public_url: &str) -> Site {
        let public_url = url::Url::parse(public_url).unwrap();
        Site {
            site_url: public_url.clone(),
            name: "test".into(),
            public_url,
        }
    }
}
