//! The moderator API: list comments by status, approve, reject, mark as spam,
//! delete, plus the session calls of the /admin page. Every call needs a
//! bearer token or a session with its CSRF header (see `auth`); no CORS
//! headers are ever added here, so other origins' scripts cannot read these
//! answers. A request a browser made for another site's page (an `Origin`
//! other than the public URL's) is refused before any credential is looked
//! at, and a body must be declared JSON, so no web page can make moderator
//! calls count toward the lock-out.

use std::sync::Arc;

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::header::SET_COOKIE;
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::filters::{
    client_ip, header_value, limited_body, moderator, query_pairs, raw_query, require_json, session_cookie,
    strict_json, with_state,
};
use super::public::{parse_cursor, parse_limit};
use super::{json_response, method_not_allowed};
use crate::auth::{self, Moderator};
use crate::comments;
use crate::domain::{Comment, CommentId, Status, ThreadUri};
use crate::error::{ApiError, respond};
use crate::state::AppState;
use crate::store::ModerationQuery;

/// Comments per moderation page when the caller does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
pub const MAX_LIST_LIMIT: u32 = 1000;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let empty_spam = warp::delete()
        .and(with_state(state.clone()))
        .and(moderator(state.clone()))
        .and(raw_query())
        .then(super::admin_rules::empty_folder)
        .map(respond);
    let list = warp::path!("api" / "admin" / "comments").and(
        list(state.clone())
            .or(empty_spam)
            .unify()
            .or(method_not_allowed("GET, HEAD, DELETE"))
            .unify(),
    );
    let rules = warp::path!("api" / "admin" / "rules").and(
        warp::get()
            .and(with_state(state.clone()))
            .and(moderator(state.clone()))
            .then(super::admin_rules::show_rules)
            .map(respond)
            .or(warp::put()
                .and(with_state(state.clone()))
                .and(moderator(state.clone()))
                .and(warp::header::headers_cloned())
                .and(limited_body())
                .then(super::admin_rules::replace_rules)
                .map(respond))
            .unify()
            .or(method_not_allowed("GET, HEAD, PUT"))
            .unify(),
    );
    let one = one_comment(state.clone());
    let stats = warp::path!("api" / "admin" / "stats").and(
        warp::get()
            .and(with_state(state.clone()))
            .and(moderator(state.clone()))
            .then(comment_stats)
            .map(respond)
            .or(method_not_allowed("GET, HEAD"))
            .unify(),
    );
    let session = warp::path!("api" / "admin" / "session").and(
        start_session(state.clone())
            .or(resume_session(state.clone()))
            .unify()
            .or(end_session(state.clone()))
            .unify()
            .or(method_not_allowed("GET, HEAD, POST, DELETE"))
            .unify(),
    );
    let approve = action(state.clone(), "approve", Status::Approved);
    let reject = action(state.clone(), "reject", Status::Rejected);
    let spam = action(state.clone(), "spam", Status::Spam);
    // Back to the queue (out of the spam folder, say).
    let pending = action(state.clone(), "pending", Status::Pending);
    let state_for_notifications = state.clone();
    let state_for_people = state.clone();
    cross_site(state)
        .or(list)
        .unify()
        .or(one)
        .unify()
        .or(stats)
        .unify()
        .or(session)
        .unify()
        .or(approve)
        .unify()
        .or(reject)
        .unify()
        .or(spam)
        .unify()
        .or(pending)
        .unify()
        .or(super::admin_notifications::routes(
            state_for_notifications.clone(),
        ))
        .unify()
        .or(super::admin_threads::routes(state_for_notifications))
        .unify()
        .or(super::admin_people::routes(state_for_people))
        .unify()
        .or(rules)
        .unify()
        .boxed()
}

/// Any /api/admin/* request whose `Origin` is not the public URL's: 403,
/// answered before the route's own filters run, so neither a token nor a
/// session is checked and nothing counts toward the lock-out. Requests
/// without `Origin` (curl, scripts) are not browsers acting for another
/// page and go on to the routes.
fn cross_site(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path("api")
        .and(warp::path("admin"))
        .and(header_value("origin"))
        .and_then(move |origin: Option<HeaderValue>| {
            let refusal = origin.and_then(|origin| {
                let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
                (!state.site.is_public_origin(&origin)).then(|| {
                    ApiError::Forbidden(format!(
                        "moderator calls are only accepted from pages of this service ({}), not from `{origin}`; \
                         if this is the moderation page, set MARGINALIA_PUBLIC_URL to the address it is opened at",
                        state.site.public_origin()
                    ))
                })
            });
            async move { refusal.map(Reply::into_response).ok_or_else(warp::reject::not_found) }
        })
        .boxed()
}

/// GET /api/admin/comments?status=pending&uri=/path/&limit=N&after=CURSOR
fn list(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state.clone()))
        .and(moderator(state))
        .and(raw_query())
        .then(list_comments)
        .map(respond)
        .boxed()
}

#[derive(Serialize)]
struct CommentList {
    comments: Vec<Comment>,
    next: Option<String>,
}

fn parse_list_query(raw: &str) -> Result<ModerationQuery, ApiError> {
    let pairs = query_pairs(raw)?;
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let status = match value("status") {
        None | Some("") => Status::Pending,
        Some(text) => text
            .parse::<Status>()
            .map_err(|message| ApiError::BadRequest(format!("status {message}")))?,
    };
    let uri = match value("uri") {
        None | Some("") => None,
        Some(text) => {
            Some(ThreadUri::parse(text).map_err(|message| ApiError::BadRequest(format!("uri {message}")))?)
        }
    };
    let by_score = match value("sort") {
        None | Some("") | Some("id") => false,
        Some("score") => true,
        Some(_) => return Err(ApiError::BadRequest("sort must be `score` or absent".into())),
    };
    Ok(ModerationQuery {
        status,
        uri,
        after: parse_cursor(value("after"))?,
        limit: parse_limit(value("limit"), DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?,
        by_score,
    })
}

async fn list_comments(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    raw_query: String,
) -> Result<Response, ApiError> {
    moderator?;
    let query = parse_list_query(&raw_query)?;
    let page = state.store.moderation_list(&query).await?;
    Ok(json_response(
        &CommentList {
            comments: page.comments,
            next: page.next.map(|id| id.to_string()),
        },
        StatusCode::OK,
    ))
}

/// POST /api/admin/comments/{id}/approve (and /reject, /spam)
fn action(state: Arc<AppState>, verb: &'static str, status: Status) -> BoxedFilter<(Response,)> {
    let path = warp::path("api")
        .and(warp::path("admin"))
        .and(warp::path("comments"))
        .and(warp::path::param::<CommentId>())
        .and(warp::path(verb))
        .and(warp::path::end());
    path.and(warp::post())
        .and(with_state(state.clone()))
        .and(moderator(state))
        .then(move |id, state, moderator| moderate(id, state, moderator, status))
        .map(respond)
        .or(path.and(method_not_allowed("POST")).map(|_id, response| response))
        .unify()
        .boxed()
}

async fn moderate(
    id: CommentId,
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    status: Status,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    let comment = comments::moderate(&state, id, status, &moderator.name).await?;
    Ok(json_response(&comment, StatusCode::OK))
}

/// GET and DELETE /api/admin/comments/{id}
fn one_comment(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let path = warp::path!("api" / "admin" / "comments" / CommentId);
    let get = path
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(moderator(state.clone()))
        .then(get_comment)
        .map(respond);
    let delete = path
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(moderator(state))
        .then(delete_comment)
        .map(respond);
    get.or(delete)
        .unify()
        .or(path
            .and(method_not_allowed("GET, HEAD, DELETE"))
            .map(|_id, response| response))
        .unify()
        .boxed()
}

async fn get_comment(
    id: CommentId,
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
) -> Result<Response, ApiError> {
    moderator?;
    let comment = state
        .store
        .comment(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no comment with id {id}")))?;
    Ok(json_response(&comment, StatusCode::OK))
}

async fn delete_comment(
    id: CommentId,
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    comments::delete(&state, id, &moderator.name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GET /api/admin/stats: comments per status, for the always-visible queue depth.
async fn comment_stats(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
) -> Result<Response, ApiError> {
    moderator?;
    let counts = state.store.status_counts().await?;
    let stats: BTreeMap<&str, i64> = Status::ALL
        .iter()
        .map(|status| (status.as_str(), counts.get(status).copied().unwrap_or(0)))
        .collect();
    Ok(json_response(&stats, StatusCode::OK))
}

#[derive(Serialize)]
struct SessionInfo<'a> {
    moderator: &'a str,
    csrf_token: &'a str,
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

/// POST /api/admin/session {"token": "…"}: trades a token for a session cookie.
fn start_session(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::post()
        .and(with_state(state.clone()))
        .and(client_ip(state))
        .and(warp::header::headers_cloned())
        .and(limited_body())
        .then(
            |state: Arc<AppState>, client: IpAddr, headers: HeaderMap, body: Result<Bytes, ApiError>| async move {
                // Before the token is looked at: a refused body is no failed login.
                require_json(&headers)?;
                let login: Login = serde_json::from_value(strict_json(&body?)?)
                    .map_err(|_| ApiError::BadRequest("send {\"token\": \"…\"} as JSON".into()))?;
                let session = state.auth.start_session(login.token.trim(), client).await?;
                tracing::info!(moderator = %session.moderator.name, "moderation session started");
                let mut response = json_response(
                    &SessionInfo {
                        moderator: &session.moderator.name,
                        csrf_token: &session.csrf_token,
                    },
                    StatusCode::OK,
                );
                set_session_cookie(
                    &mut response,
                    &session.session_id,
                    auth::SESSION_LIFETIME.as_secs(),
                    state.site.is_https(),
                )?;
                Ok::<_, ApiError>(response)
            },
        )
        .map(respond)
        .boxed()
}

/// GET /api/admin/session: the live session's moderator and CSRF token.
fn resume_session(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::get()
        .and(with_state(state.clone()))
        .and(client_ip(state))
        .and(warp::header::headers_cloned())
        .then(
            |state: Arc<AppState>, client: IpAddr, headers: HeaderMap| async move {
                let (moderator, csrf_token) = state
                    .auth
                    .resume_session(session_cookie(&headers), client)
                    .await?;
                Ok::<_, ApiError>(json_response(
                    &SessionInfo {
                        moderator: &moderator.name,
                        csrf_token: &csrf_token,
                    },
                    StatusCode::OK,
                ))
            },
        )
        .map(respond)
        .boxed()
}

/// DELETE /api/admin/session: logs out (needs the CSRF header like any call).
fn end_session(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::delete()
        .and(with_state(state.clone()))
        .and(moderator(state))
        .and(warp::header::headers_cloned())
        .then(
            |state: Arc<AppState>, moderator: Result<Moderator, ApiError>, headers: HeaderMap| async move {
                moderator?;
                if let Some(session_id) = session_cookie(&headers) {
                    state.auth.end_session(session_id).await?;
                }
                let mut response = StatusCode::NO_CONTENT.into_response();
                set_session_cookie(&mut response, "", 0, state.site.is_https())?;
                Ok::<_, ApiError>(response)
            },
        )
        .map(respond)
        .boxed()
}

/// HttpOnly (no script reads it), SameSite=Strict (no other site sends it),
/// scoped to the moderator API, and `Secure` when the public URL is https:
/// the service speaks plain HTTP to its TLS-terminating proxy, so only the
/// configured address tells whether browsers reach it over TLS.
fn set_session_cookie(
    response: &mut Response,
    value: &str,
    max_age_secs: u64,
    secure: bool,
) -> Result<(), ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/api/admin; Max-Age={max_age_secs}{secure}",
        auth::SESSION_COOKIE
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(|error| ApiError::Internal(error.into()))?;
    response.headers_mut().insert(SET_COOKIE, cookie);
    Ok(())
}
