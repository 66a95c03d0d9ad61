//! The moderator calls about one reader's data (`crate::people`): everything
//! held about an address, and its erasure. Like every `/api/admin/*` call
//! they need a moderator. The address travels in the query, so the request
//! log (which records route templates only) never holds it.

use std::sync::Arc;

use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::filters::{moderator, query_pairs, raw_query, with_state};
use super::{json_response, method_not_allowed};
use crate::auth::Moderator;
use crate::domain::Email;
use crate::error::{ApiError, respond};
use crate::people;
use crate::state::AppState;
use crate::store::ErasureMode;

/// GET and DELETE /api/admin/people?email=…
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let path = warp::path!("api" / "admin" / "people");
    let export = warp::get()
        .and(with_state(state.clone()))
        .and(moderator(state.clone()))
        .and(raw_query())
        .then(export_person)
        .map(respond);
    let erase = warp::delete()
        .and(with_state(state.clone()))
        .and(moderator(state))
        .and(raw_query())
        .then(erase_person)
        .map(respond);
    path.and(
        export
            .or(erase)
            .unify()
            .or(method_not_allowed("GET, HEAD, DELETE"))
            .unify(),
    )
    .boxed()
}

/// What the query asks: the address, and for an erasure whether the
/// comments are deleted (`comments=delete`) or anonymized (the default,
/// also spelled `comments=anonymize`).
struct PeopleQuery {
    email: Email,
    mode: ErasureMode,
}

fn parse_query(raw: &str) -> Result<PeopleQuery, ApiError> {
    let pairs = query_pairs(raw)?;
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let email = match value("email") {
        None | Some("") => {
            return Err(ApiError::BadRequest(
                "name the reader with `email=address`".into(),
            ));
        }
        Some(text) => Email::parse(text).map_err(|message| ApiError::field("email", message))?,
    };
    let mode = match value("comments") {
        None | Some("" | "anonymize") => ErasureMode::Anonymize,
        Some("delete") => ErasureMode::Delete,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "comments must be `anonymize` (the default) or `delete`".into(),
            ));
        }
    };
    Ok(PeopleQuery { email, mode })
}

/// GET /api/admin/people?email=…: every comment (every status, every
/// field) and subscription of the address.
async fn export_person(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    raw_query: String,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    let query = parse_query(&raw_query)?;
    let export = people::export(&state.store, &query.email).await?;
    tracing::info!(
        moderator = %moderator.name,
        comments = export.comments.len(),
        "personal data exported"
    );
    Ok(json_response(&export, StatusCode::OK))
}

/// DELETE /api/admin/people?email=…[&comments=delete]: `{"anonymized": N}`
/// or `{"deleted": N}`.
async fn erase_person(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    raw_query: String,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    let query = parse_query(&raw_query)?;
    let erased = people::erase_published(&state, &query.email, query.mode, &moderator.name).await?;
    let body = match query.mode {
        ErasureMode::Anonymize => json!({ "anonymized": erased.comments }),
        ErasureMode::Delete => json!({ "deleted": erased.comments }),
    };
    Ok(json_response(&body, StatusCode::OK))
}
