//! The SQLite file on a disk that fills up, and on a volume that is read-only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::*;

/// A tmpfs mounted for one test; lazily unmounted when dropped, so a failing
/// test leaks no mount.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.path().to_str().unwrap(),
            ],
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, mode: &str) {
        run(
            "mount",
            &["-o", &format!("remount,{mode}"), self.path().to_str().unwrap()],
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the disk is full; returns its path and size.
fn fill(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    let mut written = 0u64;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = file.sync_all();
    (path, written)
}

/// A body of about 9,000 characters, distinct per `n`.
fn large_body(n: usize) -> String {
    format!("large comment {n}: {}", "lorem ipsum dolor sit amet ".repeat(330))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_503s_keeps_what_was_stored_and_recovers_when_space_returns() {
    if !privileged("a_full_disk") {
        return;
    }
    let disk = Tmpfs::mount("3m");
    let logs = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", disk.path().join("marginalia.db").display());
    let server = Server::start(&Launch::new(&url, logs.path())).await;

    let mut acknowledged = std::collections::HashMap::new();
    let published = server.submit("/full/", "published before the disk filled").await;
    server.approve(published).await;
    let (status, thread_before) = server.thread("/full/").await;
    assert_eq!(status, StatusCode::OK);
    for n in 0..20 {
        let body = format!("small comment {n}");
        acknowledged.insert(server.submit("/full/", &body).await, body);
    }

    let (filler, filler_bytes) = fill(disk.path());
    // Large submissions until the database cannot grow: each answer comes
    // promptly, and the first refusal is a 503 of API.md's shape.
    let mut refused = None;
    let mut accepted_while_filling = 0;
    for n in 0..400 {
        let body = large_body(n);
        let started = Instant::now();
        let (status, answer) = server
            .post_comment(&comment("/full/", &body))
            .await
            .expect("an answer");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a submission took {:?}",
            started.elapsed()
        );
        if status == StatusCode::ACCEPTED {
            acknowledged.insert(answer["id"].as_i64().unwrap(), body);
            accepted_while_filling += 1;
            continue;
        }
        assert_unavailable(status, &answer);
        refused = Some(started.elapsed());
        break;
    }
    let first_refusal = refused.expect("submissions were still accepted on a full disk");
    // And it stays refused while the disk is full (no 500s, no hang).
    for n in 0..5 {
        let started = Instant::now();
        let (status, answer) = server
            .post_comment(&comment("/full/", &format!("small, on a full disk {n}")))
            .await
            .expect("an answer");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_unavailable(status, &answer);
    }
    // Reads keep working: the published thread and the moderation queue.
    assert_eq!(
        server.thread("/full/").await,
        (StatusCode::OK, thread_before.clone())
    );
    let stored = server.all_comments("pending").await;
    assert_all_stored(&acknowledged, &stored);
    assert_eq!(sqlite_integrity(&url).await, ["ok"]);

    // Space comes back: submissions succeed again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (id, recovered_after) = poll_until(
        "a submission accepted after freeing space",
        Duration::from_secs(10),
        || async {
            let (status, answer) = server
                .post_comment(&comment("/full/", "after freeing space"))
                .await
                .ok()?;
            if status == StatusCode::ACCEPTED {
                return answer["id"].as_i64();
            }
            assert_unavailable(status, &answer);
            None
        },
    )
    .await;
    acknowledged.insert(id, "after freeing space".into());
    let stored = server.all_comments("pending").await;
    let unacknowledged = assert_all_stored(&acknowledged, &stored);
    assert_eq!(unacknowledged, 0, "a refused submission was stored");
    assert_eq!(sqlite_integrity(&url).await, ["ok"]);
    server.assert_no_panic();
    eprintln!(
        "full disk: filler {filler_bytes} bytes; {accepted_while_filling} large comments accepted while \
         filling, then 503 in {first_refusal:?}; {} acknowledged, all stored; integrity ok; \
         accepted again {recovered_after:?} after freeing space",
        acknowledged.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_volume_serves_reads_refuses_writes_and_recovers() {
    if !privileged("a_read_only_volume") {
        return;
    }
    let disk = Tmpfs::mount("8m");
    let logs = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", disk.path().join("marginalia.db").display());
    let launch = Launch::new(&url, logs.path());
    let mut server = Server::start(&launch).await;
    let published = server.submit("/ro/", "published before").await;
    server.approve(published).await;
    let pending = server.submit("/ro/", "pending before").await;
    let (_, thread_before) = server.thread("/ro/").await;
    server.stop().await;

    disk.remount("ro");
    let server = Server::start(&launch).await;
    let (status, answer) = server
        .post_comment(&comment("/ro/", "on a read-only volume"))
        .await
        .expect("an answer");
    eprintln!("read-only: {status} {answer}");
    assert_unavailable(status, &answer);
    assert_eq!(server.thread("/ro/").await, (StatusCode::OK, thread_before));
    let stored = server.all_comments("pending").await;
    assert_eq!(stored.keys().copied().collect::<Vec<_>>(), [pending]);

    disk.remount("rw");
    let (_, recovered_after) = poll_until(
        "a submission accepted after remounting rw",
        Duration::from_secs(10),
        || async {
            let (status, answer) = server
                .post_comment(&comment("/ro/", "after remounting"))
                .await
                .ok()?;
            if status == StatusCode::ACCEPTED {
                return Some(());
            }
            assert_unavailable(status, &answer);
            None
        },
    )
    .await;
    server.assert_no_panic();
    eprintln!(
        "read-only volume: writes 503, reads 200; accepted again {recovered_after:?} after remounting rw"
    );
}
