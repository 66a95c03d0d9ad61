//! The moderator API: list comments by status, approve, reject, mark as spam,
//! delete. Every call needs a bearer token (see `auth`); no CORS headers are
//! ever added here, so other origins' scripts cannot read these answers.

use std::sync::Arc;

use serde::Serialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::filters::{moderator, query_pairs, raw_query, with_state};
use super::public::{parse_cursor, parse_limit};
use super::{json_response, method_not_allowed};
use crate::auth::Moderator;
use crate::domain::{Comment, CommentId, Status, ThreadUri};
use crate::error::{ApiError, respond};
use crate::startup::AppState;
use crate::store::ModerationQuery;

/// Comments per moderation page when the caller does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
pub const MAX_LIST_LIMIT: u32 = 1000;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let list = warp::path!("api" / "admin" / "comments")
        .and(list(state.clone()).or(method_not_allowed("GET")).unify());
    let delete = delete(state.clone());
    let approve = action(state.clone(), "approve", Status::Approved);
    let reject = action(state.clone(), "reject", Status::Rejected);
    let spam = action(state, "spam", Status::Spam);
    list.or(delete)
        .unify()
        .or(approve)
        .unify()
        .or(reject)
        .unify()
        .or(spam)
        .unify()
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
    Ok(ModerationQuery {
        status,
        uri,
        after: parse_cursor(value("after"))?,
        limit: parse_limit(value("limit"), DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?,
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
    let moderated = state
        .store
        .set_status(id, status, &moderator.name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no comment with id {id}")))?;
    if moderated.changed {
        state.metrics.comment_moderated(status);
        tracing::info!(id, status = %status, moderator = %moderator.name, "comment moderated");
    }
    Ok(json_response(&moderated.comment, StatusCode::OK))
}

/// DELETE /api/admin/comments/{id}
fn delete(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let path = warp::path!("api" / "admin" / "comments" / CommentId);
    path.and(warp::delete())
        .and(with_state(state.clone()))
        .and(moderator(state))
        .then(delete_comment)
        .map(respond)
        .or(path
            .and(method_not_allowed("DELETE"))
            .map(|_id, response| response))
        .unify()
        .boxed()
}

async fn delete_comment(
    id: CommentId,
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    if !state.store.delete_comment(id).await? {
        return Err(ApiError::NotFound(format!("no comment with id {id}")));
    }
    tracing::info!(id, moderator = %moderator.name, "comment deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
