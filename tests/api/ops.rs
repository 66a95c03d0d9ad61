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

/// `marginalia serve` as a child process (the access log is written by the
/// process's own log writer, which only the real binary installs), with its
/// standard error captured until it stops.
struct LoggingServer {
    child: tokio::process::Child,
    base: String,
    stderr: tokio::task::JoinHandle<String>,
}

impl LoggingServer {
    async fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_marginalia"));
        command.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("MARGINALIA_") || key == "DATABASE_URL" || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .env("MARGINALIA_DATABASE_URL", database_url)
            .env("MARGINALIA_BIND", "127.0.0.1:0")
            .env("MARGINALIA_ADMIN_TOKEN", ADMIN_TOKEN)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the binary starts");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let address = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("the server stopped before serving:\n{seen}"));
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.split("marginalia is serving address=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        let stderr = tokio::spawn(async move {
            while let Some(line) = lines.next_line().await.unwrap() {
                seen.push_str(&line);
                seen.push('\n');
            }
            seen
        });
        Self {
            child,
            base: format!("http://{address}"),
            stderr,
        }
    }

    async fn get(&self, path: &str) -> StatusCode {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .status()
    }

    /// Stops it as an operator would (SIGTERM; buffered lines are written on
    /// the way out) and returns everything it wrote to standard error.
    async fn stop(mut self) -> String {
        let pid = self.child.id().unwrap().to_string();
        let killed = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        assert!(self.child.wait().await.unwrap().success());
        self.stderr.await.unwrap()
    }
}

/// The access lines of a log, one per request.
fn access_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.contains(" request method="))
        .collect()
}

#[tokio::test]
async fn with_the_access_log_on_every_request_gets_a_line_without_what_the_client_chose() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let server = LoggingServer::start(database.url(), &[("MARGINALIA_ACCESS_LOG", "all")]).await;
        assert_eq!(
            server.get("/api/comments?uri=/secret-path/").await,
            StatusCode::OK
        );
        assert_eq!(
            server.get("/no/such/page?token=hunter2").await,
            StatusCode::NOT_FOUND
        );
        let log = server.stop().await;
        let lines = access_lines(&log);
        assert_eq!(lines.len(), 2, "{log}");
        assert!(
            lines[0].contains(" INFO request method=\"GET\" route=\"/api/comments\" status=200 latency_us="),
            "{log}"
        );
        assert!(
            lines[1].contains(" INFO request method=\"GET\" route=\"other\" status=404 "),
            "{log}"
        );
        // An RFC 3339 UTC timestamp with microseconds starts each line.
        let stamp = lines[0].split_whitespace().next().unwrap();
        assert!(
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).is_ok()
                && stamp.len() == "2026-12-02T10:21:39.038613Z".len(),
            "{stamp}"
        );
        assert!(!log.contains("secret-path") && !log.contains("hunter2"), "{log}");
    })
    .await;
}

#[tokio::test]
async fn by_default_only_failures_and_slow_requests_get_an_access_line() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        // No MARGINALIA_ACCESS_LOG: the default, `errors`.
        let server = LoggingServer::start(database.url(), &[]).await;
        assert_eq!(server.get("/healthz").await, StatusCode::OK);
        assert_eq!(server.get("/no/such/page").await, StatusCode::NOT_FOUND);
        // The comments table goes away under the running service: the next
        // thread read fails for real.
        let mut raw = RawDatabase::connect(database.url()).await;
        let rename = "ALTER TABLE comments RENAME TO comments_gone";
        match &mut raw {
            RawDatabase::Sqlite(connection) => sqlx::query(rename).execute(connection).await.map(drop),
            RawDatabase::Postgres(connection) => sqlx::query(rename).execute(connection).await.map(drop),
        }
        .unwrap();
        assert_eq!(
            server.get("/api/comments?uri=/never-read/").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let log = server.stop().await;
        let lines = access_lines(&log);
        assert_eq!(lines.len(), 1, "only the failure: {log}");
        assert!(
            lines[0].contains(" WARN request method=\"GET\" route=\"/api/comments\" status=500 "),
            "{log}"
        );
    })
    .await;
}

#[tokio::test]
async fn by_default_a_slow_request_gets_an_access_line() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    // Every request takes at least 0 ms: each one counts as slow.
    let server = LoggingServer::start(database.url(), &[("MARGINALIA_SLOW_REQUEST_MS", "0")]).await;
    assert_eq!(server.get("/healthz").await, StatusCode::OK);
    let log = server.stop().await;
    let lines = access_lines(&log);
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains(" WARN request method=\"GET\" route=\"/healthz\" status=200 "),
        "{log}"
    );
}

#[tokio::test]
async fn the_log_filter_still_applies_to_access_lines() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    // `info` for the rest of the service (the start-up line names the port).
    let filter = "warn,marginalia=info,marginalia::routes=warn";
    let server = LoggingServer::start(
        database.url(),
        &[("MARGINALIA_ACCESS_LOG", "all"), ("MARGINALIA_LOG", filter)],
    )
    .await;
    assert_eq!(server.get("/healthz").await, StatusCode::OK);
    let log = server.stop().await;
    assert!(access_lines(&log).is_empty(), "{log}");
}
