//! `spawn_app` and the typed helpers the tests are written with.

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;

use marginalia::config::Config;
use marginalia::startup::App;
use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::pg_database::PgDatabase;

/// The moderator token every test app is configured with (named `admin`).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suite may use, from `MARGINALIA_TEST_DATABASE_URL`.
pub fn postgres_server_url() -> Option<String> {
    std::env::var("MARGINALIA_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// SQLite always; PostgreSQL too when a server is configured.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if postgres_server_url().is_some() {
        backends.push(Backend::Postgres);
    }
    backends
}

/// Runs `test` once per backend under test, saying which on failure.
pub async fn for_each_backend<F, Fut>(test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    for backend in backends() {
        eprintln!("--- backend: {backend:?}");
        test(backend).await;
    }
}

/// A database that exists for one test and is removed afterwards.
pub enum TestDatabase {
    Sqlite { _dir: tempfile::TempDir, url: String },
    Postgres(PgDatabase),
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("marginalia.db").display());
                TestDatabase::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => {
                let server_url = postgres_server_url().expect("MARGINALIA_TEST_DATABASE_URL");
                TestDatabase::Postgres(PgDatabase::create(&server_url).await)
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } => url,
            TestDatabase::Postgres(database) => &database.url,
        }
    }
}

/// A running instance and a client for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub config: Config,
    pub first_token: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    // Last: dropped after the server has stopped. `None` only while
    // `restart` hands it to the next instance.
    database: Option<TestDatabase>,
}

/// The configuration tests start from: a private port, a generous rate limit
/// (tests submit many comments from 127.0.0.1) and a known admin token.
pub fn test_config(database_url: &str) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database: marginalia::config::DatabaseArgs {
            database_url: Some(database_url.to_owned()),
        },
        admin_token: Some(SecretString::from(ADMIN_TOKEN)),
        rate_limit_per_minute: NonZeroU32::new(10_000).unwrap(),
        rate_limit_burst: NonZeroU32::new(10_000).unwrap(),
        allowed_origins: Vec::new(),
        trusted_proxies: Vec::new(),
        ..Config::default()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts an app whose configuration `customize` may change first.
pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::create(backend).await;
    let mut config = test_config(database.url());
    customize(&mut config);
    start(config, database).await
}

async fn start(config: Config, database: TestDatabase) -> TestApp {
    let mut app = App::build(&config).await.expect("the app builds");
    let address = app.address();
    let first_token = app
        .take_first_token()
        .map(|token| secrecy::ExposeSecret::expose_secret(&token).to_owned());
    let (shutdown, shutdown_signal) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = shutdown_signal.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        config,
        first_token,
        shutdown: Some(shutdown),
        server: Some(server),
        database: Some(database),
    }
}

impl TestApp {
    pub fn database_url(&self) -> &str {
        self.database.as_ref().expect("the database").url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// Stops the server and waits until it has shut down.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends cleanly");
        }
    }

    /// Stops this instance and starts a new one on the same database.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().unwrap();
        let database = self.database.take().expect("the database");
        start(config, database).await
    }

    // --- public API ---

    pub async fn post_json(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/api/comments"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Submits a valid comment on `uri` and returns its id.
    pub async fn submit(&self, uri: &str, body: &str) -> i64 {
        self.submit_with(json!({"uri": uri, "body": body})).await
    }

    /// Submits a valid comment whose fields `overrides` may replace.
    pub async fn submit_with(&self, overrides: Value) -> i64 {
        let mut comment = valid_comment();
        // Without a body of its own, a body nobody sent before: the same
        // address, page and body twice is a duplicate (409).
        if overrides.get("body").is_none() {
            static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            comment["body"] = json!(format!("A *thoughtful* comment ({n})."));
        }
        merge(&mut comment, overrides);
        let response = self.post_json(&comment).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "submission refused: {body}");
        body["id"].as_i64().expect("an id")
    }

    /// Submits and approves a comment; returns its id.
    pub async fn publish(&self, uri: &str, body: &str) -> i64 {
        let id = self.submit(uri, body).await;
        assert_eq!(self.moderate(id, "approve").await.status(), StatusCode::OK);
        id
    }

    pub async fn get_thread(&self, query: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/comments?{query}")))
            .send()
            .await
            .unwrap()
    }

    /// The public thread of `uri` as JSON (asserting a 200).
    pub async fn thread(&self, uri: &str) -> Value {
        let response = self.get_thread(&format!("uri={}", encode(uri))).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The ids in the public thread of `uri`, in order.
    pub async fn thread_ids(&self, uri: &str) -> Vec<i64> {
        ids(&self.thread(uri).await["comments"])
    }

    // --- moderator API ---

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// POST /api/admin/comments/{id}/{action}
    pub async fn moderate(&self, id: i64, action: &str) -> Response {
        self.admin(
            reqwest::Method::POST,
            &format!("/api/admin/comments/{id}/{action}"),
        )
        .send()
        .await
        .unwrap()
    }

    pub async fn delete(&self, id: i64) -> Response {
        self.admin(reqwest::Method::DELETE, &format!("/api/admin/comments/{id}"))
            .send()
            .await
            .unwrap()
    }

    /// GET /api/admin/comments?{query} as JSON (asserting a 200).
    pub async fn admin_list(&self, query: &str) -> Value {
        let response = self
            .admin(reqwest::Method::GET, &format!("/api/admin/comments?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// GET /api/admin/comments/{id}: one comment as moderators see it
    /// (asserting a 200).
    pub async fn admin_comment(&self, id: i64) -> Value {
        let response = self
            .admin(reqwest::Method::GET, &format!("/api/admin/comments/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A test that panicked never called stop(): end the server anyway.
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A submission that passes every rule.
pub fn valid_comment() -> Value {
    json!({
        "uri": "/posts/hello/",
        "name": "Ada Lovelace",
        "email": "ada@example.org",
        "website": "https://ada.example/",
        "body": "A *thoughtful* comment.",
    })
}

/// Overwrites `target`'s fields with `overrides`' (a `null` removes one).
pub fn merge(target: &mut Value, overrides: Value) {
    let (Value::Object(target), Value::Object(overrides)) = (target, overrides) else {
        panic!("merge needs two objects");
    };
    for (key, value) in overrides {
        if value.is_null() {
            target.remove(&key);
        } else {
            target.insert(key, value);
        }
    }
}

pub fn ids(comments: &Value) -> Vec<i64> {
    comments
        .as_array()
        .expect("a list of comments")
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Asserts the JSON error shape and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "errors are JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// Runs the binary with `args` on `database_url` only (none of the tests'
/// own `MARGINALIA_*` environment). Awaited, not blocking: the app under test
/// runs on the test's runtime, and a runtime blocked on the child froze the
/// app in the middle of a transaction, so the command found SQLite locked.
pub async fn run_marginalia(args: &[&str], database_url: Option<&str>) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_marginalia"));
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MARGINALIA_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    if let Some(url) = database_url {
        command.env("MARGINALIA_DATABASE_URL", url);
    }
    command.output().await.expect("the binary runs")
}

/// Runs `marginalia serve` with `env` only (plus a private database) and returns its output.
pub fn serve_with(env: &[(&str, &str)], database_url: &str) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_marginalia"));
    command.arg("serve");
    // The tests' own environment must not leak into the child's configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("MARGINALIA_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .env("MARGINALIA_DATABASE_URL", database_url)
        .env("MARGINALIA_BIND", "127.0.0.1:0");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

/// A direct connection to a test's database, for what no endpoint shows (the
/// rows of the notification outbox) and for moving a row's clock back, which
/// the service itself never does.
pub enum RawDatabase {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl RawDatabase {
    pub async fn connect(url: &str) -> RawDatabase {
        use sqlx::Connection;
        if url.starts_with("sqlite:") {
            RawDatabase::Sqlite(sqlx::SqliteConnection::connect(url).await.unwrap())
        } else {
            RawDatabase::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            RawDatabase::Sqlite(_) => Backend::Sqlite,
            RawDatabase::Postgres(_) => Backend::Postgres,
        }
    }

    /// The one number a `SELECT COUNT(*) …` (or any single BIGINT) answers.
    pub async fn count(&mut self, sql: &'static str) -> i64 {
        let count = match self {
            RawDatabase::Sqlite(connection) => sqlx::query_scalar(sql).fetch_one(connection).await,
            RawDatabase::Postgres(connection) => sqlx::query_scalar(sql).fetch_one(connection).await,
        };
        count.unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Runs `sql` with `$1` bound to `at`; returns the rows it changed.
    pub async fn execute_at(&mut self, sql: &'static str, at: time::OffsetDateTime) -> u64 {
        let done = match self {
            RawDatabase::Sqlite(connection) => sqlx::query(sql)
                .bind(at)
                .execute(connection)
                .await
                .map(|done| done.rows_affected()),
            RawDatabase::Postgres(connection) => sqlx::query(sql)
                .bind(at)
                .execute(connection)
                .await
                .map(|done| done.rows_affected()),
        };
        done.unwrap_or_else(|error| panic!("{sql}: {error}"))
    }
}

/// One sample of `/metrics`: the value of the series written exactly as
/// `series` (name and labels), or 0 when it is absent (never incremented).
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metric_value(&text, series)
}

/// The value of `series` in a Prometheus text exposition, 0 when absent.
pub fn metric_value(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        })
        .unwrap_or(0.0)
}
