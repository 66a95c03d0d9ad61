//! The real `marginalia` binary as a child process, a client for it, write
//! load that remembers every acknowledgement, and the gates of the suite.

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

/// The moderator token every instance is started with.
pub const ADMIN_TOKEN: &str = "resilience-admin-token-0123456789";

/// How long any single HTTP exchange may take before the test calls it a hang.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(15);

/// True when the tests that need root, mounts or `initdb` may run; otherwise
/// prints why the caller skips.
pub fn privileged(test: &str) -> bool {
    if std::env::var("MARGINALIA_TEST_PRIVILEGED").is_ok_and(|value| value == "1") {
        return true;
    }
    eprintln!("{test}: skipped: needs MARGINALIA_TEST_PRIVILEGED=1 (root, mount, PostgreSQL binaries)");
    false
}

/// The PostgreSQL server of the suite, from `MARGINALIA_TEST_DATABASE_URL`.
pub fn postgres_server_url() -> Option<String> {
    std::env::var("MARGINALIA_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Polls `probe` until it returns `Some`, or panics with `what` after `limit`.
pub async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return (value, started.elapsed());
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `marginalia serve` child process. Killed when dropped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub log_path: PathBuf,
    pub client: reqwest::Client,
    pub database_url: String,
}

/// How to start an instance.
#[derive(Clone)]
pub struct Launch {
    pub database_url: String,
    /// Where its stderr goes (one file per start, next to each other).
    pub log_dir: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Launch {
    pub fn new(database_url: &str, log_dir: &Path) -> Self {
        Self {
            database_url: database_url.to_owned(),
            log_dir: log_dir.to_owned(),
            env: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

static STARTS: AtomicUsize = AtomicUsize::new(0);

impl Server {
    /// Starts the binary on a free port and waits until `/healthz` answers.
    pub async fn start(launch: &Launch) -> Server {
        let port = free_port();
        let number = STARTS.fetch_add(1, Ordering::Relaxed);
        let log_path = launch.log_dir.join(format!("marginalia-{number}.log"));
        let log = File::create(&log_path).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_marginalia"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MARGINALIA_BIND", format!("127.0.0.1:{port}"))
            .env("MARGINALIA_DATABASE_URL", &launch.database_url)
            .env("MARGINALIA_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("MARGINALIA_RATE_LIMIT_PER_MINUTE", "1000000")
            .env("MARGINALIA_RATE_LIMIT_BURST", "1000000")
            .env("MARGINALIA_LOG", "warn")
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let child = command.spawn().expect("starting marginalia");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_LIMIT)
            .build()
            .unwrap();
        let mut server = Server {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log_path,
            client,
            database_url: launch.database_url.clone(),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.try_wait() {
                panic!("marginalia exited at start-up ({status}):\n{}", server.log());
            }
            let answer = server.client.get(server.url("/healthz")).send().await;
            if answer.is_ok_and(|response| response.status() == StatusCode::OK) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "marginalia did not answer within 20 s:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server
    }

    /// Starts the binary expecting it to refuse to start: returns its exit
    /// status, how long it took, and what it said.
    pub async fn start_expecting_failure(launch: &Launch) -> (ExitStatus, Duration, String) {
        let number = STARTS.fetch_add(1, Ordering::Relaxed);
        let log_path = launch.log_dir.join(format!("marginalia-{number}.log"));
        let started = Instant::now();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_marginalia"))
            .arg("serve")
            .env_clear()
            .env("MARGINALIA_BIND", "127.0.0.1:0")
            .env("MARGINALIA_DATABASE_URL", &launch.database_url)
            .env("MARGINALIA_ADMIN_TOKEN", ADMIN_TOKEN)
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .expect("marginalia neither served nor exited within 20 s")
            .expect("running marginalia");
        let said = String::from_utf8_lossy(&output.stderr).into_owned();
        let _ = std::fs::write(&log_path, &said);
        (output.status, started.elapsed(), said)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running child").id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Asserts that the process never panicked.
    pub fn assert_no_panic(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "marginalia panicked:\n{log}");
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().expect("waiting for the child")
    }

    /// SIGKILL: no chance to flush, close or finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping the child");
        }
    }

    /// SIGTERM: what systemd and `docker stop` send.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
    }

    /// Waits for the process to exit by itself; `None` if it has not within `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                self.child = None;
                return Some((status, started.elapsed()));
            }
            if started.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM and wait (asserting a clean exit within 30 s).
    pub async fn stop(&mut self) {
        self.sigterm();
        let (status, _) = self
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("marginalia stops within 30 s of SIGTERM");
        assert!(status.success(), "exit status {status}:\n{}", self.log());
    }

    pub async fn post_comment(&self, comment: &Value) -> reqwest::Result<(StatusCode, Value)> {
        let response = self
            .client
            .post(self.url("/api/comments"))
            .json(comment)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }

    /// Submits a comment with this body on `uri`; asserts the 202; returns its id.
    pub async fn submit(&self, uri: &str, body: &str) -> i64 {
        let (status, answer) = self.post_comment(&comment(uri, body)).await.expect("an answer");
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["id"].as_i64().expect("an id")
    }

    pub async fn approve(&self, id: i64) {
        let response = self
            .client
            .post(self.url(&format!("/api/admin/comments/{id}/approve")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), StatusCode::OK);
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(self.url(path)).send().await
    }

    /// The public thread as (status, JSON body).
    pub async fn thread(&self, uri: &str) -> (StatusCode, Value) {
        let response = self
            .get(&format!("/api/comments?uri={uri}"))
            .await
            .expect("an answer");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Every comment with `status`, id → body, through the moderator API,
    /// page by page.
    pub async fn all_comments(&self, status: &str) -> HashMap<i64, String> {
        let mut found = HashMap::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/api/admin/comments?status={status}&limit=200");
            if let Some(after) = &after {
                path.push_str(&format!("&after={after}"));
            }
            let response = self
                .client
                .get(self.url(&path))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .expect("an answer");
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            for comment in page["comments"].as_array().unwrap() {
                let id = comment["id"].as_i64().unwrap();
                let body = comment["body"].as_str().unwrap().to_owned();
                assert!(found.insert(id, body).is_none(), "id {id} listed twice");
            }
            // The cursor is opaque: a string (or a number), passed back as is.
            after = match &page["next"] {
                Value::Null => return found,
                Value::String(next) => Some(next.clone()),
                next => Some(next.to_string()),
            };
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A valid submission.
pub fn comment(uri: &str, body: &str) -> Value {
    json!({
        "uri": uri,
        "name": "Resilient Reader",
        "email": "reader@example.org",
        "body": body,
    })
}

/// Asserts the contract's error shape with this code, and that the message says
/// nothing about the inside (driver, pool, addresses, SQL).
pub fn assert_unavailable(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(!message.is_empty());
    let lowered = body.to_string().to_lowercase();
    for secret in [
        "sqlx",
        "sqlite",
        "postgres",
        "pool",
        "refused",
        "127.0.0.1",
        "select",
        "insert",
        "error returned",
        "disk",
        "code",
    ] {
        assert!(!lowered.contains(secret), "the error leaks `{secret}`: {body}");
    }
}

/// What a write load learned.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// id → body of every submission answered with a complete 202.
    pub acknowledged: HashMap<i64, String>,
    /// Statuses other than 202, with a sample body each.
    pub other_statuses: Vec<(StatusCode, Value)>,
    /// Requests that failed before any response (connect refused, reset).
    pub no_response: usize,
    /// Responses whose headers came but whose body was cut off or garbled.
    pub incomplete: usize,
}

impl LoadOutcome {
    fn merge(&mut self, other: LoadOutcome) {
        for (id, body) in other.acknowledged {
            assert!(
                self.acknowledged.insert(id, body).is_none(),
                "id {id} acknowledged twice"
            );
        }
        self.other_statuses.extend(other.other_statuses);
        self.no_response += other.no_response;
        self.incomplete += other.incomplete;
    }
}

/// Concurrent writers submitting distinct comments until `stop` is set.
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    pub acked: Arc<AtomicUsize>,
    writers: Vec<tokio::task::JoinHandle<LoadOutcome>>,
}

impl WriteLoad {
    /// `writers` tasks, each with its own connection, bodies tagged with `tag`.
    pub fn start(base: &str, writers: usize, tag: &str) -> WriteLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let writers = (0..writers)
            .map(|writer| {
                let (stop, acked) = (stop.clone(), acked.clone());
                let url = format!("{base}/api/comments");
                let tag = tag.to_owned();
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .timeout(REQUEST_LIMIT)
                        .pool_max_idle_per_host(1)
                        .build()
                        .unwrap();
                    let mut outcome = LoadOutcome::default();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        n += 1;
                        let body = format!("{tag} writer {writer} comment {n}");
                        let sent = client.post(&url).json(&comment("/load/", &body)).send().await;
                        let response = match sent {
                            Ok(response) => response,
                            Err(error) => {
                                assert!(!error.is_timeout(), "a submission hung: {error}");
                                outcome.no_response += 1;
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                continue;
                            }
                        };
                        let status = response.status();
                        match response.json::<Value>().await {
                            Ok(answer) if status == StatusCode::ACCEPTED => {
                                let id = answer["id"].as_i64().expect("an id in a 202");
                                outcome.acknowledged.insert(id, body);
                                acked.fetch_add(1, Ordering::AcqRel);
                            }
                            Ok(answer) => outcome.other_statuses.push((status, answer)),
                            Err(_) => outcome.incomplete += 1,
                        }
                    }
                    outcome
                })
            })
            .collect();
        WriteLoad { stop, acked, writers }
    }

    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Acquire)
    }

    /// Waits until at least `count` submissions were acknowledged.
    pub async fn wait_for_acks(&self, count: usize) {
        poll_until("acknowledged submissions", Duration::from_secs(30), || async {
            (self.acked() >= count).then_some(())
        })
        .await;
    }

    pub async fn finish(self) -> LoadOutcome {
        self.stop.store(true, Ordering::Release);
        let mut total = LoadOutcome::default();
        for writer in self.writers {
            total.merge(writer.await.expect("a writer task"));
        }
        total
    }
}

/// Asserts that every acknowledged comment is stored with its body; returns
/// how many stored comments were never acknowledged (in flight at the crash).
pub fn assert_all_stored(acknowledged: &HashMap<i64, String>, stored: &HashMap<i64, String>) -> usize {
    let missing: Vec<(i64, String, Option<String>)> = acknowledged
        .iter()
        .filter(|(id, body)| stored.get(id) != Some(body))
        .map(|(id, body)| {
            let prefix = |text: &String| text.chars().take(40).collect::<String>();
            (*id, prefix(body), stored.get(id).map(prefix))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged comments are missing or changed, e.g. (id, sent, stored) {:?}",
        missing.len(),
        acknowledged.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
    stored.keys().filter(|id| !acknowledged.contains_key(id)).count()
}

/// `PRAGMA integrity_check` of a SQLite file, opened read-only beside the server.
pub async fn sqlite_integrity(database_url: &str) -> Vec<String> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
        .unwrap()
        .read_only(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("opening the SQLite file");
    let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut connection)
        .await
        .expect("running integrity_check");
    let _ = connection.close().await;
    rows
}

/// Runs a command, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("running {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
