//! The public API the widget calls: submit a comment, read a thread, count
//! comments. CORS applies here (and only here) per `ALLOWED_ORIGINS`.
//!
//! Nothing here ever publishes a pending, rejected or spam comment, nor an
//! email, IP or user agent: the responses are built from `PublicComment`,
//! which has no such fields.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use maud::{DOCTYPE, Markup, html};
use serde::Serialize;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::{ACCEPT_LANGUAGE, CACHE_CONTROL, ETAG, LOCATION, REFERER, VARY};
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::{
    client_ip, etag_listed, header_value, limited_body, query_pairs, raw_query, with_state,
};
use super::submission::{SubmissionFormat, parse_submission_with_signals};
use super::{json_response, method_not_allowed};
use crate::comments;
use crate::config::Site;
use crate::domain::{CommentId, PublicComment, Status, ThreadUri};
use crate::error::{ApiError, respond};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::thread_cache::CachedPage;
use crate::threads;

/// Comments per thread page when the widget does not say.
pub const DEFAULT_THREAD_LIMIT: u32 = 200;
/// Larger `limit`s are clamped to this.
pub const MAX_THREAD_LIMIT: u32 = 1000;
/// Most uris one counts request may ask for.
pub const MAX_COUNT_URIS: usize = 100;
/// What a reader is told after submitting.
pub const PENDING_MESSAGE: &str = "Your comment is awaiting moderation.";
/// What a known author (`MARGINALIA_MODERATION=known`) is told.
pub const PUBLISHED_MESSAGE: &str = "Your comment is published.";

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let cors = cors(&state.allowed_origins);
    let site = Arc::new(OwnOrigin::new(state.site.clone(), &state.allowed_origins));
    // The read first: it is by far the most frequent request, and a GET
    // that tried the POST route first would pay for its rejection.
    let comments = thread(state.clone())
        .or(submit(state.clone()))
        .unify()
        .or(method_not_allowed("GET, HEAD, POST"))
        .unify()
        .boxed();
    let form_token = form_token(state.clone())
        .or(method_not_allowed("GET, HEAD"))
        .unify()
        .boxed();
    let counts = counts(state).or(method_not_allowed("GET, HEAD")).unify().boxed();
    let comments = warp::path!("api" / "comments").and(with_cors(comments, cors.clone(), site.clone()));
    let form_token = warp::path!("api" / "form-token").and(with_cors(form_token, cors.clone(), site.clone()));
    let counts = warp::path!("api" / "counts").and(with_cors(counts, cors, site));
    comments
        .or(counts)
        .unify()
        .or(form_token)
        .unify()
        .map(vary_on_origin)
        .boxed()
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
/// A request without `Origin` is not a CORS request, and warp's wrapper
/// passes it through untouched; it takes the plain branch too, which
/// answers the same without the wrapper and the second try.
fn with_cors(
    routes: BoxedFilter<(Response,)>,
    cors: warp::cors::Builder,
    site: Arc<OwnOrigin>,
) -> BoxedFilter<(Response,)> {
    let same_origin = header_value("origin")
        .and_then(move |origin: Option<HeaderValue>| {
            let own = match &origin {
                None => true,
                Some(origin) => origin.to_str().is_ok_and(|origin| site.is_own(origin)),
            };
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

/// [`Site::is_public_origin`] for the `Origin` of every public request. That
/// parses the value as a URL, which costs a cached read more than its cache
/// lookup; the origins the service expects (its own, as browsers write it,
/// and each allowed origin) are answered from a list made once, with the
/// same function. Other values are judged by it too and remembered, up to
/// [`LEARNED_ORIGINS`] of them: with any origin allowed (the default), the
/// blogs that embed the widget are not listed, but they are few and send the
/// same value every time. Once the list is full, other values are parsed
/// each time, as before.
struct OwnOrigin {
    site: Site,
    known: Vec<(String, bool)>,
    learned: RwLock<Vec<(Box<str>, bool)>>,
}

/// How many unlisted origins [`OwnOrigin`] remembers, and the longest it
/// remembers: bounded, whatever clients send.
const LEARNED_ORIGINS: usize = 32;
const LEARNED_ORIGIN_MAX_BYTES: usize = 256;

impl OwnOrigin {
    fn new(site: Site, allowed_origins: &[String]) -> Self {
        let known = std::iter::once(site.public_origin())
            .chain(allowed_origins.iter().cloned())
            .map(|origin| {
                let own = site.is_public_origin(&origin);
                (origin, own)
            })
            .collect();
        Self {
            site,
            known,
            learned: RwLock::new(Vec::new()),
        }
    }

    fn is_own(&self, origin: &str) -> bool {
        if let Some((_, own)) = self.known.iter().find(|(known, _)| known == origin) {
            return *own;
        }
        let learned = self
            .learned
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, own)) = learned.iter().find(|(seen, _)| &**seen == origin) {
            return *own;
        }
        drop(learned);
        let own = self.site.is_public_origin(origin);
        // Never waits: a busy list only means this value is parsed again.
        if origin.len() <= LEARNED_ORIGIN_MAX_BYTES
            && let Ok(mut learned) = self.learned.try_write()
            && learned.len() < LEARNED_ORIGINS
            && !learned.iter().any(|(seen, _)| &**seen == origin)
        {
            learned.push((origin.into(), own));
        }
        own
    }
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
        .then(
            |state: Arc<AppState>, client, headers: HeaderMap, body| async move {
                let wants_page = prefers_html(&headers);
                let lang = page_lang(&headers, state.lang);
                match submit_comment(state, client, headers, body).await {
                    Ok(response) => response,
                    // A browser posting the plain form (no JavaScript) gets a page
                    // it can show, with the same status; everyone else gets JSON.
                    Err(error) if wants_page => error_page(error, lang),
                    Err(error) => error.into_response(),
                }
            },
        )
        .boxed()
}

/// The language of a page answering this request: its `Accept-Language`,
/// else the configured language.
fn page_lang(headers: &HeaderMap, fallback: Lang) -> Lang {
    let accept = headers.get(ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok());
    Lang::negotiate(accept, fallback)
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

/// The error as a small page in the reader's language: what went wrong,
/// field by field, and a way back.
fn error_page(error: ApiError, lang: Lang) -> Response {
    let status = error.status();
    let items: Vec<Markup> = match &error {
        ApiError::Validation(fields) => fields
            .iter()
            .map(|(field, message)| {
                let label = html! { strong { (field_label(lang, field)) } };
                match field_problem(message) {
                    (key, Some(count)) => lang.html_count(key, count, &[("field", label)]),
                    (key, None) => lang.html(key, &[("field", label)]),
                }
            })
            .collect(),
        ApiError::RateLimited { retry_after_secs } => {
            vec![lang.html_count("form.failure.rateLimited", *retry_after_secs, &[])]
        }
        ApiError::PayloadTooLarge { .. } => vec![lang.html("form.failure.tooLarge", &[])],
        ApiError::BadRequest(_) | ApiError::UnsupportedMediaType { .. } => {
            vec![lang.html("form.failure.unreadable", &[])]
        }
        ApiError::Unavailable(_) => vec![lang.html("form.failure.unavailable", &[])],
        // Already in the reader's language (`submit_comment`).
        ApiError::Closed(message) => vec![html! { (message) }],
        ApiError::Conflict {
            code: "duplicate", ..
        } => vec![lang.html("form.failure.duplicate", &[])],
        _ => vec![lang.html("form.failure.internal", &[])],
    };
    let retry = match &error {
        ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
        _ => None,
    };
    let page = small_page(
        lang,
        &lang.text("form.failed.title", &[]),
        html! {
            p { (lang.text("form.failed.intro", &[])) }
            ul {
                @for item in items {
                    li { (item) }
                }
            }
            p { (lang.text("form.failed.retry", &[])) }
        },
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

/// The form pages' layout: language and direction, a title, no style.
fn small_page(lang: Lang, title: &str, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) dir=(lang.dir()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width";
                title { (title) }
            }
            body { (content) }
        }
    }
    .into_string()
}

/// A submission field as the form's reader knows it.
fn field_label(lang: Lang, field: &str) -> String {
    let key = match field {
        "uri" => "form.field.uri",
        "name" => "form.field.name",
        "email" => "form.field.email",
        "website" => "form.field.website",
        "body" => "form.field.body",
        "parent_id" => "form.field.parentId",
        "notify" => "form.field.notify",
        "lang" => "form.field.lang",
        other => return other.to_owned(),
    };
    lang.text(key, &[])
}

/// The catalog message (and its number, for the plural ones) that says what
/// the validation message of a field says. The domain's parsers word their
/// messages in English for the JSON API; the form page says the same in the
/// reader's language. A message not recognized here is shown as "not valid"
/// (the unit test below keeps every parser's messages recognized).
fn field_problem(message: &str) -> (&'static str, Option<u64>) {
    let number = |text: &str| {
        text.split(|c: char| !c.is_ascii_digit())
            .find(|part| !part.is_empty())
            .and_then(|digits| digits.parse::<u64>().ok())
    };
    if message.starts_with("is required") {
        ("form.problem.required", None)
    } else if message.starts_with("must be at most ") && message.ends_with(" characters") {
        match number(message) {
            Some(max) => ("form.problem.tooLong", Some(max)),
            None => ("form.problem.invalid", None),
        }
    } else if message.starts_with("must not contain bidirectional") {
        ("form.problem.directionControls", None)
    } else if message == "must not contain control characters" {
        ("form.problem.controlCharacters", None)
    } else if message == "must be a valid email address" {
        ("form.problem.email", None)
    } else if message == "must be an absolute http or https URL" {
        ("form.problem.url", None)
    } else if message.starts_with("must be a path") || message.contains("whitespace") {
        ("form.problem.path", None)
    } else if message.starts_with("is nested too deeply") {
        match number(message) {
            Some(max) => ("form.problem.tooDeep", Some(max)),
            None => ("form.problem.invalid", None),
        }
    } else if message.starts_with("renders to too much HTML") {
        ("form.problem.tooMuchFormatting", None)
    } else if message.starts_with("says nothing") {
        ("form.problem.noText", None)
    } else if message.starts_with("must be an approved comment") {
        ("form.problem.parent", None)
    } else if message.contains("BCP 47") {
        ("form.problem.language", None)
    } else {
        ("form.problem.invalid", None)
    }
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
    let (new_comment, signals) = parse_submission_with_signals(format, &body, client, &headers)?;
    let stored = comments::submit(&state, client, new_comment, signals)
        .await
        .map_err(|error| match error {
            comments::CommentError::Closed => {
                ApiError::Closed(page_lang(&headers, state.lang).text(super::CLOSED_MESSAGE, &[]))
            }
            other => other.into(),
        })?;
    // A comment caught as spam is answered as any waiting one: the sender
    // learns nothing from the answer.
    let (status, message) = match stored.status {
        Status::Approved => (Status::Approved, PUBLISHED_MESSAGE),
        _ => (Status::Pending, PENDING_MESSAGE),
    };

    match format {
        SubmissionFormat::Json => Ok(json_response(
            &Submitted {
                comment: stored.to_public(true),
                uri: &stored.uri,
                status,
                message,
            },
            StatusCode::ACCEPTED,
        )),
        SubmissionFormat::Form => Ok(form_success(
            &headers,
            &state.allowed_origins,
            &state.site,
            page_lang(&headers, state.lang),
        )),
    }
}

/// A plain form post goes back to the page it came from (its `Referer`), but
/// only when that page's origin (scheme, host and port) is an allowed origin
/// or the public URL's; otherwise a small page says what happened. Never a
/// redirect anywhere else, whatever the `Host` header says. The page is in
/// `lang`.
fn form_success(headers: &HeaderMap, allowed_origins: &[String], site: &Site, lang: Lang) -> Response {
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
    let page = warp::reply::html(small_page(
        lang,
        &lang.text("form.received.title", &[]),
        html! {
            p { (lang.text("form.received.thanks", &[])) }
            p { (lang.text("form.received.back", &[])) }
        },
    ));
    let mut response = warp::reply::with_status(page, StatusCode::ACCEPTED).into_response();
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    response
}

/// The form token's answer.
#[derive(Serialize)]
struct FormToken {
    /// Sent back as `form_token` with the comment.
    token: String,
    /// Seconds a form must be shown before it is sent, or the comment is
    /// held as `too_fast`.
    min_seconds: f64,
}

/// GET /api/form-token: a signed time stamp for the widget to send with the
/// comment (see `spam::form_token`). Its own call, so that thread reads stay
/// cacheable; never cached itself.
fn form_token(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state))
        .map(|state: Arc<AppState>| {
            let token = FormToken {
                token: state.form_tokens.issue(time::OffsetDateTime::now_utc()),
                min_seconds: state.min_form_age.as_secs_f64(),
            };
            let mut response = json_response(&token, StatusCode::OK);
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        })
        .boxed()
}

/// GET /api/comments?uri=/path/&limit=N&after=CURSOR
///
/// Not boxed: it sits right under the boxed alternatives of its path, and
/// each box is an allocation on every read.
fn thread(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(with_state(state))
        .and(raw_query())
        .and(header_value("if-none-match"))
        .then(read_thread)
        .map(respond)
}

#[derive(Serialize)]
struct Thread<'a> {
    uri: &'a str,
    total: i64,
    next: Option<String>,
    comments: &'a [PublicComment],
    /// The thread takes no new comments (the widget shows no form).
    closed: bool,
}

/// The query of a thread read.
struct ThreadQuery {
    uri: ThreadUri,
    limit: u32,
    after: Option<CommentId>,
}

impl ThreadQuery {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        // The first value of each key, decoded as `query_pairs` decodes it
        // (the same parser), but borrowed from the query wherever nothing
        // needed decoding: the cached read allocates nothing here.
        let (mut uri, mut limit, mut after) = (None, None, None);
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let slot = match key.as_ref() {
                "uri" => &mut uri,
                "limit" => &mut limit,
                "after" => &mut after,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        let uri = uri.ok_or_else(|| ApiError::BadRequest("the uri query parameter is required".into()))?;
        let uri = ThreadUri::parse(&uri).map_err(|message| ApiError::BadRequest(format!("uri {message}")))?;
        Ok(Self {
            uri,
            limit: parse_limit(limit.as_deref(), DEFAULT_THREAD_LIMIT, MAX_THREAD_LIMIT)?,
            after: parse_cursor(after.as_deref())?,
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
    let thread_state = threads::state(state, &query.uri).await?;
    let now = time::OffsetDateTime::now_utc();
    let closed = thread_state.is_closed(state.close_after, now);
    let body = serde_json::to_vec(&Thread {
        uri: query.uri.as_str(),
        total: page.total,
        next: page.next.map(|id| id.to_string()),
        comments: &page.comments,
        closed,
    })
    .map_err(|error| ApiError::Internal(error.into()))?;
    // The ETag is a digest of the exact bytes, so any moderation action that
    // changes what this page shows changes it too.
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let etag = HeaderValue::from_str(&etag).map_err(|error| ApiError::Internal(error.into()))?;
    Ok(CachedPage {
        body: body.into(),
        etag,
        // An open thread the age rule will close: the page says so until then.
        fresh_until: if closed {
            None
        } else {
            thread_state.open_until(state.close_after, now)
        },
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
        let response = form_success(&headers, &allowed, &site, Lang::En);
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
            let response = form_success(&headers, &allowed, &site, Lang::En);
            assert_eq!(response.status(), StatusCode::ACCEPTED, "{elsewhere}");
        }
        // With no allow-list there is nothing to trust a Referer against…
        headers.insert(REFERER, "https://blog.example/post/1".parse().unwrap());
        assert_eq!(
            form_success(&headers, &[], &site, Lang::En).status(),
            StatusCode::ACCEPTED
        );
    }

    /// Found when the service was tried as an attacker would: `Host:
    /// evil.example` plus a matching `Referer` redirected there.
    #[test]
    fn the_service_itself_is_its_public_url_never_the_host_header() {
        let site = service_at("https://comments.example");
        let mut headers = HeaderMap::new();
        headers.insert("host", "evil.example".parse().unwrap());
        headers.insert(REFERER, "https://evil.example/phish".parse().unwrap());
        assert_eq!(
            form_success(&headers, &[], &site, Lang::En).status(),
            StatusCode::ACCEPTED
        );
        headers.insert(REFERER, "http://evil.example/phish".parse().unwrap());
        assert_eq!(
            form_success(&headers, &[], &site, Lang::En).status(),
            StatusCode::ACCEPTED
        );

        // A page of the service itself (the demo) is safe to go back to.
        headers.insert(REFERER, "https://comments.example/demo".parse().unwrap());
        let response = form_success(&headers, &[], &site, Lang::En);
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[LOCATION], "https://comments.example/demo");
        // …but not the same host over another scheme.
        headers.insert(REFERER, "http://comments.example/demo".parse().unwrap());
        assert_eq!(
            form_success(&headers, &[], &site, Lang::En).status(),
            StatusCode::ACCEPTED
        );
    }

    /// Every message the domain's parsers and the use cases give a field is
    /// recognized, so the form page says it in the reader's language.
    #[test]
    fn every_field_message_has_its_catalog_message() {
        use crate::domain::{AuthorName, CommentBody, Email, LanguageTag, ThreadUri, Website};
        let cases: Vec<(String, &str)> = vec![
            (AuthorName::parse("").unwrap_err(), "form.problem.required"),
            (
                AuthorName::parse("\u{200B}").unwrap_err(),
                "form.problem.required",
            ),
            (
                AuthorName::parse(&"x".repeat(81)).unwrap_err(),
                "form.problem.tooLong",
            ),
            (
                AuthorName::parse("a\u{7}b").unwrap_err(),
                "form.problem.controlCharacters",
            ),
            (
                AuthorName::parse("a\u{202E}b").unwrap_err(),
                "form.problem.directionControls",
            ),
            (Email::parse("nope").unwrap_err(), "form.problem.email"),
            (Website::parse("ftp://x.example").unwrap_err(), "form.problem.url"),
            (ThreadUri::parse("posts").unwrap_err(), "form.problem.path"),
            (ThreadUri::parse("/a b").unwrap_err(), "form.problem.path"),
            (CommentBody::parse("**  **").unwrap_err(), "form.problem.noText"),
            (
                CommentBody::parse(&"> ".repeat(crate::domain::MAX_BODY_NESTING + 5)).unwrap_err(),
                "form.problem.tooDeep",
            ),
            (LanguageTag::parse("no tag").unwrap_err(), "form.problem.language"),
            (
                crate::comments::CommentError::ParentNotApproved.to_string(),
                "form.problem.parent",
            ),
            ("something new".to_owned(), "form.problem.invalid"),
        ];
        for (message, key) in cases {
            assert_eq!(field_problem(&message).0, key, "{message}");
        }
        assert_eq!(
            field_problem("must be at most 80 characters"),
            ("form.problem.tooLong", Some(80))
        );
    }

    #[test]
    fn form_pages_speak_the_readers_language() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, "he-IL,he;q=0.9,en;q=0.5".parse().unwrap());
        assert_eq!(page_lang(&headers, Lang::En), Lang::He);
        assert_eq!(page_lang(&HeaderMap::new(), Lang::Fr), Lang::Fr);
    }

    #[test]
    fn the_listed_origins_are_judged_as_the_site_judges_them() {
        let site = service_at("https://comments.example");
        let allowed = vec!["https://blog.example".to_owned()];
        let own = OwnOrigin::new(site.clone(), &allowed);
        for origin in [
            "https://comments.example",
            "https://COMMENTS.example:443",
            "https://blog.example",
            "http://comments.example",
            "https://comments.example.evil.example",
            "null",
            "",
        ] {
            assert_eq!(own.is_own(origin), site.is_public_origin(origin), "{origin}");
        }
        assert!(own.is_own("https://comments.example"));
        assert!(!own.is_own("https://blog.example"));
        // Remembered values answer as the first time; the list stays bounded.
        assert!(own.is_own("https://COMMENTS.example:443"));
        for n in 0..2 * LEARNED_ORIGINS {
            assert!(!own.is_own(&format!("https://blog{n}.example")));
        }
        assert!(own.is_own("https://COMMENTS.example:443"));
        assert!(!own.is_own("http://comments.example"));
        assert_eq!(own.learned.read().unwrap().len(), LEARNED_ORIGINS);
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
