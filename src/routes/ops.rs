//! Operations: liveness, readiness (the database answers) and Prometheus metrics.

use std::sync::Arc;

use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::filters::with_state;
use super::{json_response, method_not_allowed};
use crate::error::{ApiError, respond};
use crate::state::AppState;

pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz").and(
        warp::get()
            .map(|| json_response(&json!({"status": "ok"}), StatusCode::OK))
            .or(method_not_allowed("GET, HEAD"))
            .unify(),
    );
    let readyz = warp::path!("readyz").and(
        warp::get()
            .and(with_state(state.clone()))
            .then(readiness)
            .map(respond)
            .or(method_not_allowed("GET, HEAD"))
            .unify(),
    );
    let metrics = warp::path!("metrics").and(
        warp::get()
            .and(with_state(state))
            .then(render_metrics)
            .or(method_not_allowed("GET, HEAD"))
            .unify(),
    );
    healthz.or(readyz).unify().or(metrics).unify().boxed()
}

/// GET /readyz: 200 when the database answers, 503 when not.
async fn readiness(state: Arc<AppState>) -> Result<Response, ApiError> {
    // Whatever the failure, the instance cannot serve: not ready.
    state
        .store
        .ping()
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    Ok(json_response(
        &json!({"status": "ready", "database": state.store.backend_name()}),
        StatusCode::OK,
    ))
}

/// GET /metrics: the Prometheus text format, with the queue depth read now.
async fn render_metrics(state: Arc<AppState>) -> Response {
    let pending = match state.store.pending_count().await {
        Ok(count) => count,
        Err(error) => {
            tracing::warn!(error = ?error, "could not count pending comments for /metrics");
            -1
        }
    };
    let queued: Vec<(&'static str, i64)> = match state.store.outbox_figures().await {
        Ok(figures) => figures
            .into_iter()
            .map(|(kind, figures)| (kind.as_str(), figures.queued))
            .collect(),
        Err(error) => {
            tracing::warn!(error = ?error, "could not count queued notifications for /metrics");
            Vec::new()
        }
    };
    let text = state.metrics.render(pending, &queued);
    warp::reply::with_header(
        text,
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response()
}
