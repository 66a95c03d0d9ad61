//! The moderator calls about spam: `GET`/`PUT /api/admin/rules` (the
//! moderation rules, stored in the database so every instance applies the
//! same ones) and `DELETE /api/admin/comments?status=spam` (empty the spam
//! folder). Both need a moderator, like every `/api/admin/*` call.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use super::filters::{query_pairs, require_json, strict_json};
use super::json_response;
use crate::auth::Moderator;
use crate::comments;
use crate::error::{ApiError, FieldErrors};
use crate::spam::{ModerationMode, ModerationRules};
use crate::state::AppState;

/// The fields of the rules, all required by `PUT`.
const RULE_FIELDS: [&str; 4] = ["moderation", "hold_links", "held_words", "blocked_words"];

/// GET /api/admin/rules: the rules in force.
pub(super) async fn show_rules(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
) -> Result<Response, ApiError> {
    moderator?;
    let rules = comments::moderation_rules(&state).await?;
    Ok(json_response(&*rules, StatusCode::OK))
}

/// PUT /api/admin/rules {"moderation", "hold_links", "held_words",
/// "blocked_words"}: replaces the rules; 422 naming every bad field.
pub(super) async fn replace_rules(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    require_json(&headers)?;
    let Value::Object(object) = strict_json(&body?)? else {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()));
    };
    // The whole rules are replaced: a field this call does not know is a
    // mistake (a typo would otherwise silently reset that rule).
    if let Some(unknown) = object.keys().find(|key| !RULE_FIELDS.contains(&key.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown field `{unknown}`; the rules are {}",
            RULE_FIELDS.join(", ")
        )));
    }
    let mut errors = FieldErrors::new();
    let moderation = match object.get("moderation") {
        None => {
            errors.insert("moderation", "is required".into());
            None
        }
        Some(Value::String(text)) => ModerationMode::parse(text).or_else(|| {
            errors.insert("moderation", "must be `all` or `known`".into());
            None
        }),
        Some(_) => {
            errors.insert("moderation", "must be `all` or `known`".into());
            None
        }
    };
    let hold_links = match object.get("hold_links") {
        None => {
            errors.insert("hold_links", "is required".into());
            None
        }
        Some(Value::Number(number)) if number.as_i64().is_some() => number.as_i64(),
        Some(_) => {
            errors.insert("hold_links", "must be an integer".into());
            None
        }
    };
    let mut words = |field: &'static str| match object.get(field) {
        None => {
            errors.insert(field, "is required".into());
            None
        }
        Some(Value::Array(items)) => {
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect();
            if strings.is_none() {
                errors.insert(field, "must be an array of strings".into());
            }
            strings
        }
        Some(_) => {
            errors.insert(field, "must be an array of strings".into());
            None
        }
    };
    let held = words("held_words");
    let blocked = words("blocked_words");
    let (Some(moderation), Some(hold_links), Some(held), Some(blocked)) =
        (moderation, hold_links, held, blocked)
    else {
        return Err(ApiError::Validation(errors));
    };
    let rules = ModerationRules::new(moderation, hold_links, &held, &blocked).map_err(|rule_errors| {
        errors.extend(rule_errors);
        ApiError::Validation(errors)
    })?;
    let rules = comments::replace_rules(&state, rules, &moderator.name).await?;
    Ok(json_response(&*rules, StatusCode::OK))
}

/// DELETE /api/admin/comments?status=spam: deletes every spam comment for
/// good; `{"deleted": N}`. Any other status (or none) is a 400: only the
/// spam folder is emptied in bulk.
pub(super) async fn empty_folder(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    raw_query: String,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    let pairs = query_pairs(&raw_query)?;
    let statuses: Vec<&str> = pairs
        .iter()
        .filter(|(key, _)| key == "status")
        .map(|(_, value)| value.as_str())
        .collect();
    if statuses != ["spam"] || pairs.len() != 1 {
        return Err(ApiError::BadRequest(
            "only the spam folder can be emptied: DELETE /api/admin/comments?status=spam".into(),
        ));
    }
    let deleted = comments::empty_spam(&state, &moderator.name).await?;
    Ok(json_response(&json!({ "deleted": deleted }), StatusCode::OK))
}
