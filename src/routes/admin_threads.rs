//! The moderator calls on whole threads: close and open one
//! (`POST /api/admin/threads/close?uri=…`, `/open?uri=…`), and rename or
//! merge one (`POST /api/admin/threads/rename` with `{"from", "to"}`). Both
//! need a moderator, like every `/api/admin/*` call; the use cases are in
//! `threads`.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use super::filters::{
    limited_body, moderator, query_pairs, raw_query, require_json, strict_json, with_state,
};
use super::{json_response, method_not_allowed};
use crate::auth::Moderator;
use crate::domain::ThreadUri;
use crate::error::{ApiError, FieldErrors, respond};
use crate::state::AppState;
use crate::threads;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let close = decide(state.clone(), "close", true);
    let open = decide(state.clone(), "open", false);
    let rename = warp::path!("api" / "admin" / "threads" / "rename").and(
        warp::post()
            .and(with_state(state.clone()))
            .and(moderator(state))
            .and(warp::header::headers_cloned())
            .and(limited_body())
            .then(rename_thread)
            .map(respond)
            .or(method_not_allowed("POST"))
            .unify(),
    );
    close.or(open).unify().or(rename).unify().boxed()
}

/// POST /api/admin/threads/close?uri=… (and /open)
fn decide(state: Arc<AppState>, verb: &'static str, closed: bool) -> BoxedFilter<(Response,)> {
    let path = warp::path("api")
        .and(warp::path("admin"))
        .and(warp::path("threads"))
        .and(warp::path(verb))
        .and(warp::path::end());
    path.and(warp::post())
        .and(with_state(state.clone()))
        .and(moderator(state))
        .and(raw_query())
        .then(move |state, moderator, raw_query| decide_thread(state, moderator, raw_query, closed))
        .map(respond)
        .or(path.and(method_not_allowed("POST")))
        .unify()
        .boxed()
}

#[derive(Serialize)]
struct Decided<'a> {
    uri: &'a str,
    closed: bool,
}

async fn decide_thread(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    raw_query: String,
    closed: bool,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    let pairs = query_pairs(&raw_query)?;
    let uri = pairs
        .iter()
        .find(|(key, _)| key == "uri")
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| ApiError::BadRequest("the uri query parameter is required".into()))?;
    let uri = ThreadUri::parse(uri).map_err(|message| ApiError::BadRequest(format!("uri {message}")))?;
    let closed = threads::decide(&state, &uri, closed, &moderator.name).await?;
    Ok(json_response(
        &Decided {
            uri: uri.as_str(),
            closed,
        },
        StatusCode::OK,
    ))
}

/// POST /api/admin/threads/rename {"from": "/old/", "to": "/new/"}:
/// `200 {"moved": N}`; 0 when `from` has no comments (a repeated rename is
/// harmless, and a closed thread without comments still moves its state).
async fn rename_thread(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    require_json(&headers)?;
    let Value::Object(request) = strict_json(&body?)? else {
        return Err(ApiError::BadRequest(
            "send {\"from\": \"/old/\", \"to\": \"/new/\"} as JSON".into(),
        ));
    };
    let mut errors = FieldErrors::new();
    let mut uri = |field: &'static str| match request.get(field) {
        None | Some(Value::Null) => {
            errors.insert(field, "is required".into());
            None
        }
        Some(Value::String(text)) => ThreadUri::parse(text)
            .map_err(|message| errors.insert(field, message))
            .ok(),
        Some(_) => {
            errors.insert(field, "must be a string".into());
            None
        }
    };
    let (from, to) = (uri("from"), uri("to"));
    if let (Some(from), Some(to)) = (&from, &to)
        && from == to
    {
        errors.insert("to", "must differ from `from`".into());
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let moved = threads::rename(&state, &from, &to, &moderator.name).await?;
    Ok(json_response(&json!({ "moved": moved }), StatusCode::OK))
}
