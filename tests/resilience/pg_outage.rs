//! PostgreSQL goes away under a running service and comes back: the service
//! says 503 promptly instead of hanging, acknowledges nothing it did not
//! store, and recovers by itself, change listener included.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::*;

/// The newest PostgreSQL server installed (Debian's layout).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort();
    let version = versions
        .last()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"))
}
/// The longest a request may take to be refused while the database is down.
const REFUSAL_LIMIT: Duration = Duration::from_secs(5);

/// A PostgreSQL cluster of the test's own: its own data directory and port.
struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl PgCluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> String {
        let data = self.data();
        let pg_ctl = pg_bin().join("pg_ctl");
        let mut all = vec!["-u", "postgres", "--", pg_ctl.to_str().unwrap(), "-D"];
        all.push(data.to_str().unwrap());
        all.extend_from_slice(args);
        run("runuser", &all)
    }

    fn init() -> PgCluster {
        let dir = tempfile::tempdir().unwrap();
        run("chown", &["postgres:postgres", dir.path().to_str().unwrap()]);
        let cluster = PgCluster {
            dir,
            port: free_port(),
        };
        let data = cluster.data();
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                pg_bin().join("initdb").to_str().unwrap(),
                "--no-sync",
                "--auth=trust",
                "--username=postgres",
                "-D",
                data.to_str().unwrap(),
            ],
        );
        cluster
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        self.pg_ctl(&["-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
    }

    fn stop(&self, mode: &str) {
        self.pg_ctl(&["-m", mode, "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Runs a request and says how long it took.
async fn timed<T>(request: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let answer = request.await;
    (answer, started.elapsed())
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_gives_prompt_503s_and_the_service_recovers_by_itself() {
    if !privileged("postgres_going_away") {
        return;
    }
    let cluster = PgCluster::init();
    cluster.start();
    let logs = tempfile::tempdir().unwrap();
    let launch = Launch::new(&cluster.url(), logs.path());
    // Debug for the change listener's "listening" lines.
    let a = Server::start(&launch.clone().env("MARGINALIA_LOG", "warn,marginalia=debug")).await;
    let b = Server::start(&launch).await;
    const LISTENING: &str = "listening for changes by other instances";
    poll_until("A's change listener", Duration::from_secs(10), || async {
        (count(&a.log(), LISTENING) >= 1).then_some(())
    })
    .await;

    // A published thread, read twice (so it is in A's cache), and a pending comment.
    let published = a.submit("/cached/", "published before the outage").await;
    a.approve(published).await;
    let (status, thread_before) = a.thread("/cached/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(a.thread("/cached/").await.1, thread_before);
    let pending = a.submit("/cached/", "pending before the outage").await;

    // --- the database goes away ---
    cluster.stop("fast");
    let stopped = Instant::now();
    let ((), readyz_503_after) = poll_until("/readyz turning 503", Duration::from_secs(10), || async {
        let response = a.get("/readyz").await.ok()?;
        if response.status() == StatusCode::OK {
            return None;
        }
        let (status, body) = json_of(response).await;
        assert_unavailable(status, &body);
        Some(())
    })
    .await;

    // Concurrent submissions: every one refused with a 503, none hangs.
    let refusals = futures_util::future::join_all((0..8).map(|n| {
        let a = &a;
        timed(async move {
            a.post_comment(&comment("/cached/", &format!("during the outage {n}")))
                .await
        })
    }))
    .await;
    let mut slowest_refusal = Duration::ZERO;
    for (answer, took) in refusals {
        let (status, body) = answer.expect("an answer, not a dropped connection");
        assert_unavailable(status, &body);
        assert!(took < REFUSAL_LIMIT, "a submission took {took:?} to be refused");
        slowest_refusal = slowest_refusal.max(took);
    }
    // A thread A had read before the outage is still shown: the last page
    // read (thread_cache.rs `last_known`; nobody can moderate while the
    // database is down). One that needs the database is refused promptly.
    let ((status, body), read_took) =
        timed(async { json_of(a.get("/api/comments?uri=/cached/").await.unwrap()).await }).await;
    assert!(read_took < REFUSAL_LIMIT, "a read took {read_took:?}");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, thread_before);
    let ((status, body), read_took) =
        timed(async { json_of(a.get("/api/comments?uri=/never-read/").await.unwrap()).await }).await;
    assert!(read_took < REFUSAL_LIMIT, "a read took {read_took:?}");
    assert_unavailable(status, &body);
    // What needs no database still answers.
    assert_eq!(a.get("/healthz").await.unwrap().status(), StatusCode::OK);
    assert_eq!(a.get("/embed.js").await.unwrap().status(), StatusCode::OK);
    let down_for = stopped.elapsed();

    // --- the database comes back ---
    let listening_before = count(&a.log(), LISTENING);
    cluster.start();
    let (_, ready_after) = poll_until("/readyz back to 200", Duration::from_secs(15), || async {
        let response = a.get("/readyz").await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    let (recovered, accepted_after) =
        poll_until("a submission accepted again", Duration::from_secs(15), || async {
            let (status, body) = a
                .post_comment(&comment("/cached/", "after the outage"))
                .await
                .ok()?;
            if status == StatusCode::ACCEPTED {
                return body["id"].as_i64();
            }
            assert_unavailable(status, &body);
            None
        })
        .await;
    // The change listener reconnects by itself...
    let (_, listening_after) = poll_until(
        "A's change listener reconnecting",
        Duration::from_secs(15),
        || async { (count(&a.log(), LISTENING) > listening_before).then_some(()) },
    )
    .await;
    assert!(a.log().contains("change listener lost"), "{}", a.log());
    // ...and A's cache hears of a change made on B: fill A's cache, then
    // publish on B, and A must show it without being told anything else.
    assert_eq!(a.thread("/cached/").await.1, thread_before);
    let from_b = b.submit("/cached/", "published on the other instance").await;
    b.approve(from_b).await;
    let (_, seen_after) = poll_until(
        "B's change reaching A's cache",
        Duration::from_secs(5),
        || async {
            let (status, thread) = a.thread("/cached/").await;
            assert_eq!(status, StatusCode::OK);
            let ids: Vec<i64> = thread["comments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap())
                .collect();
            (ids == [published, from_b]).then_some(())
        },
    )
    .await;

    // Nothing acknowledged was lost, nothing refused was stored.
    let stored = a.all_comments("pending").await;
    let mut ids: Vec<i64> = stored.keys().copied().collect();
    ids.sort();
    assert_eq!(ids, [pending, recovered], "{stored:?}");
    a.assert_no_panic();
    b.assert_no_panic();
    eprintln!(
        "PostgreSQL outage: /readyz 503 after {readyz_503_after:?}; 8 concurrent submissions refused \
         with 503, slowest {slowest_refusal:?}; down for {down_for:?}; after the restart /readyz 200 \
         in {ready_after:?}, a submission 202 in {accepted_after:?}, listener back in \
         {listening_after:?}, another instance's change visible in {seen_after:?}"
    );
}
