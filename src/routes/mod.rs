//! The HTTP surface, one module per audience:
//!
//! - [`public`]: what the widget calls (submit, thread, counts), with CORS;
//! - [`admin`]: the moderator API behind bearer tokens, and
//!   [`admin_notifications`], its calls about notification settings;
//!   [`admin_people`], its calls about one reader's data (export, erase), and
//!   [`admin_threads`], its calls on whole threads (close, open, rename);
//! - [`pages`]: the widget script, the moderation page, the demo post and the
//!   OpenAPI description;
//! - [`ops`]: health, readiness and metrics for operators;
//! - [`links`]: the pages of one-click links in mail (moderate, subscribe,
//!   unsubscribe).
//! - [`feeds`]: the Atom feeds of approved comments.
//!
//! Every path answers every outcome itself (a wrong method is a 405 of that
//! path, with `Allow`); [`crate::error::handle_rejection`] only sees what
//! matched no path at all. The whole tree is logged and measured here.

pub mod admin;
pub mod admin_notifications;
pub mod admin_people;
mod admin_rules;
pub mod admin_threads;
pub mod feeds;
pub mod filters;
pub mod links;
pub mod ops;
pub mod pages;
pub mod public;
pub mod submission;

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, log::Info};

use crate::comments::CommentError;
use crate::error::{ApiError, handle_rejection};
use crate::state::AppState;
use crate::telemetry::{self, AccessLevel, AccessLog};

/// All routes, with JSON errors, security headers, request logs and metrics.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let metrics_state = state.clone();
    let access = state.access_log;
    let log = warp::log::custom(move |info: Info<'_>| {
        let route = route_label(info.path());
        let status = info.status().as_u16();
        let elapsed = info.elapsed();
        metrics_state
            .metrics
            .observe_request(info.method(), route, status, elapsed.as_secs_f64());
        // Failures and slow requests always tell the operator; every other
        // request only with `MARGINALIA_ACCESS_LOG=all`. The level check is
        // `tracing`'s (so `MARGINALIA_LOG=warn` still silences the `info`
        // lines); the line itself is formatted by `telemetry`, not `tracing`.
        let level = if status >= 500 || elapsed >= access.slow {
            if !tracing::enabled!(tracing::Level::WARN) {
                return;
            }
            AccessLevel::Warn
        } else if access.mode == AccessLog::All && tracing::enabled!(tracing::Level::INFO) {
            AccessLevel::Info
        } else {
            return;
        };
        // The route template, not the path or query: bounded, and free of
        // anything a client chose (emails, tokens and bodies never appear);
        // ids of admin actions are logged by their handlers.
        telemetry::access_line(
            level,
            info.method().as_str(),
            route,
            status,
            elapsed.as_micros() as u64,
        );
    });

    public::routes(state.clone())
        .or(admin::routes(state.clone()))
        .unify()
        .or(pages::routes(state.clone()))
        .unify()
        .or(links::routes(state.clone()))
        .unify()
        .or(ops::routes(state.clone()))
        .unify()
        .or(feeds::routes(state))
        .unify()
        .recover(handle_rejection)
        .unify()
        .with(warp::reply::with::header("x-content-type-options", "nosniff"))
        .map(Reply::into_response)
        .with(log)
        .map(Reply::into_response)
        .boxed()
}

/// Use-case outcomes as HTTP answers. Here, not in `error`, because the use
/// cases sit below the HTTP layer and `error` must not depend on them.
impl From<CommentError> for ApiError {
    fn from(error: CommentError) -> Self {
        match error {
            CommentError::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
            CommentError::ParentNotApproved => ApiError::field("parent_id", error.to_string()),
            CommentError::Closed => ApiError::Closed(crate::i18n::Lang::En.text(CLOSED_MESSAGE, &[])),
            CommentError::NotFound(_) => ApiError::NotFound(error.to_string()),
            CommentError::Duplicate => ApiError::Conflict {
                code: "duplicate",
                message: error.to_string(),
            },
            CommentError::Store(error) => error.into(),
        }
    }
}

/// The catalog key of what a reader is told when a thread is closed.
pub(crate) const CLOSED_MESSAGE: &str = "thread.closed";

/// A 405 for a path that exists but not with this method. Put last in a
/// path's alternatives.
pub(crate) fn method_not_allowed(allow: &'static str) -> BoxedFilter<(Response,)> {
    warp::any()
        .map(move || ApiError::MethodNotAllowed { allow }.into_response())
        .boxed()
}

/// The route template of a path, for metrics labels and logs: bounded, and
/// free of ids and of anything a client chose.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/api/comments" => "/api/comments",
        "/api/counts" => "/api/counts",
        "/api/admin/comments" => "/api/admin/comments",
        "/api/admin/stats" => "/api/admin/stats",
        "/api/admin/session" => "/api/admin/session",
        "/api/admin/notifications" => "/api/admin/notifications",
        "/api/admin/notifications/test" => "/api/admin/notifications/test",
        "/api/admin/people" => "/api/admin/people",
        "/api/admin/threads/close" => "/api/admin/threads/close",
        "/api/admin/threads/open" => "/api/admin/threads/open",
        "/api/admin/threads/rename" => "/api/admin/threads/rename",
        "/api/admin/rules" => "/api/admin/rules",
        "/api/form-token" => "/api/form-token",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/embed.js" => "/embed.js",
        "/admin" => "/admin",
        "/admin/admin.js" => "/admin/admin.js",
        "/admin/admin.css" => "/admin/admin.css",
        "/demo" => "/demo",
        "/openapi.yaml" => "/openapi.yaml",
        "/feed/recent.atom" => "/feed/recent.atom",
        "/feed/thread.atom" => "/feed/thread.atom",
        _ => match path.strip_prefix("/api/admin/comments/") {
            Some(rest) if rest.ends_with("/approve") => "/api/admin/comments/{id}/approve",
            Some(rest) if rest.ends_with("/reject") => "/api/admin/comments/{id}/reject",
            Some(rest) if rest.ends_with("/spam") => "/api/admin/comments/{id}/spam",
            Some(rest) if rest.ends_with("/pending") => "/api/admin/comments/{id}/pending",
            Some(_) => "/api/admin/comments/{id}",
            None => catalog_label(path).unwrap_or_else(|| link_label(path)),
        },
    }
}

/// The template of a language catalog's path: one per folder, whatever the
/// language asked for.
fn catalog_label(path: &str) -> Option<&'static str> {
    let file = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|file| !file.is_empty() && !file.contains('/'))
    };
    if file("/embed/locales/") {
        Some("/embed/locales/{tag}.json")
    } else if file("/admin/locales/") {
        Some("/admin/locales/{tag}.json")
    } else {
        None
    }
}

/// The template of a one-click link's path: the token (which holds an
/// address and acts as a password) must never reach a log or a label.
fn link_label(path: &str) -> &'static str {
    let segment = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|token| !token.is_empty() && !token.contains('/'))
    };
    if segment("/moderate/") {
        "/moderate/{token}"
    } else if segment("/subscribe/") {
        "/subscribe/{token}"
    } else if segment("/unsubscribe/") {
        "/unsubscribe/{token}"
    } else {
        "other"
    }
}

/// A JSON body with a status, as a plain response.
pub(crate) fn json_response<T: serde::Serialize>(value: &T, status: StatusCode) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn ids_and_unknown_paths_collapse_into_templates() {
        assert_eq!(
            route_label("/api/admin/comments/42/approve"),
            "/api/admin/comments/{id}/approve"
        );
        assert_eq!(route_label("/api/admin/comments/42"), "/api/admin/comments/{id}");
        assert_eq!(route_label("/wp-login.php"), "other");
        assert_eq!(route_label("/moderate/AQE-secret_token"), "/moderate/{token}");
        assert_eq!(route_label("/subscribe/AQE-secret_token"), "/subscribe/{token}");
        assert_eq!(
            route_label("/unsubscribe/AQE-secret_token"),
            "/unsubscribe/{token}"
        );
        assert_eq!(route_label("/moderate/"), "other");
        assert_eq!(route_label("/moderate/a/b"), "other");
        assert_eq!(route_label("/embed/locales/de.json"), "/embed/locales/{tag}.json");
        assert_eq!(
            route_label("/embed/locales/xx-YY.json"),
            "/embed/locales/{tag}.json"
        );
        assert_eq!(route_label("/admin/locales/ar.json"), "/admin/locales/{tag}.json");
        assert_eq!(route_label("/embed/locales/"), "other");
        assert_eq!(route_label("/admin/locales/a/b.json"), "other");
    }
}
