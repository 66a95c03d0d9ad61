//! Health, readiness and metrics.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer_while_the_database_does() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let health = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let ready: Value = ready.json().await.unwrap();
        assert_eq!(ready["status"], "ready");
    })
    .await;
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_stops_the_start_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be: opening fails for real.
    let not_a_file = dir.path().join("db");
    std::fs::create_dir(&not_a_file).unwrap();
    let config = test_config(&format!("sqlite://{}", not_a_file.display()));
    let error = match marginalia::startup::App::build(&config).await {
        Ok(_) => panic!("a directory is not a database"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("SQLite"),
        "the error says what was being opened: {error}"
    );
}

#[tokio::test]
async fn metrics_count_requests_submissions_moderation_and_the_queue() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.rate_limit_burst = std::num::NonZeroU32::new(3).unwrap();
            config.rate_limit_per_minute = std::num::NonZeroU32::new(1).unwrap();
        })
        .await;
        let approved = app.submit("/m/", "one").await;
        let rejected = app.submit("/m/", "two").await;
        app.submit("/m/", "three").await;
        app.moderate(approved, "approve").await;
        app.moderate(approved, "approve").await;
        app.moderate(rejected, "reject").await;
        assert_eq!(app.post_json(&valid_comment()).await.status(), StatusCode::TOO_MANY_REQUESTS);
        app.thread("/m/").await;

        let response = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.unwrap();
        for expected in [
            "marginalia_comments_submitted_total 3",
            "marginalia_comments_moderated_total{status=\"approved\"} 1",
            "marginalia_comments_moderated_total{status=\"rejected\"} 1",
            "marginalia_rate_limited_total{scope=\"submit\"} 1",
            "marginalia_pending_comments 1",
            "marginalia_http_requests_total{method=\"GET\",route=\"/api/comments\",status=\"200\"} 1",
            "marginalia_http_requests_total{method=\"POST\",route=\"/api/comments\",status=\"429\"} 1",
            "marginalia_http_requests_total{method=\"POST\",route=\"/api/admin/comments/{id}/approve\",status=\"200\"} 2",
            "marginalia_http_request_duration_seconds_count{route=\"/api/comments\"}",
        ] {
            assert!(text.contains(expected), "missing {expected}:\n{text}");
        }
    })
    .await;
}
