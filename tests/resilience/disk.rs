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

/// Writes a file until the disk is full, then gives back `leave` bytes (so
/// that submissions fill the rest, and the disk fills mid-commit); returns
/// its path and size.
fn fill(dir: &Path, name: &str, leave: u64) -> (PathBuf, u64) {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 4096];
    let mut written = 0u64;
    while file.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let written = written.saturating_sub(leave);
    file.set_len(written).unwrap();
    let _ = file.sync_all();
    (path, written)
}

/// A body of about 9,000 characters, distinct per `n`.
fn large_body(n: usize) -> String {
    // Without trailing white space: the service trims bodies.
    format!(
        "large comment {n}: {}",
        "lorem ipsum dolor sit amet ".repeat(330).trim_end()
    )
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

    let (filler, filler_bytes) = fill(disk.path(), "filler", 256 * 1024);
    // Large submissions until the database cannot grow: each answer comes
    // promptly, and the first refusal is a 503 of the contract's shape.
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
    // Take the last free bytes too. Small submissions may still fit in the
    // room the refused one had claimed inside the WAL file (SQLite reuses
    // it): each answer is a 202 that is kept or a 503, never a 500 or a hang,
    // whether alone or in a burst of concurrent ones sharing a commit.
    let (last_filler, _) = fill(disk.path(), "last-filler", 0);
    let mut small_accepted = 0;
    let mut small_refused = 0;
    for round in 0..3 {
        let answers = futures_util::future::join_all((0..16).map(|n| {
            let server = &server;
            async move {
                let body = format!("small, on a full disk, round {round}, {n}");
                let started = Instant::now();
                let answer = server.post_comment(&comment("/full/", &body)).await;
                (body, answer, started.elapsed())
            }
        }))
        .await;
        for (body, answer, took) in answers {
            let (status, answer) = answer.expect("an answer");
            assert!(took < Duration::from_secs(5), "a submission took {took:?}");
            if status == StatusCode::ACCEPTED {
                acknowledged.insert(answer["id"].as_i64().unwrap(), body);
                small_accepted += 1;
            } else {
                assert_unavailable(status, &answer);
                small_refused += 1;
            }
        }
    }
    assert!(
        small_refused > 0,
        "all {small_accepted} small submissions fitted on a full disk"
    );
    // A large one cannot fit any more.
    let (status, answer) = server
        .post_comment(&comment("/full/", &large_body(9999)))
        .await
        .expect("an answer");
    assert_unavailable(status, &answer);
    // Reads keep working: the published thread and the moderation queue. So
    // the instance stays ready: the database answers, only writes cannot grow it.
    let ready = server.get("/readyz").await.expect("an answer");
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(
        server.thread("/full/").await,
        (StatusCode::OK, thread_before.clone())
    );
    let stored = server.all_comments("pending").await;
    assert_all_stored(&acknowledged, &stored);
    assert_eq!(sqlite_integrity(&url).await, ["ok"]);

    // Space comes back: submissions succeed again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&last_filler).unwrap();
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
         filling, then 503 in {first_refusal:?}; on the full disk {small_accepted} small ones \
         accepted, {small_refused} refused with 503; {} acknowledged, all stored; integrity ok; \
         accepted again {recovered_after:?} after freeing space",
        acknowledged.len()
    );
}

/// Asks the kernel to make the volume read-only; false when it refuses.
fn try_remount(disk: &Tmpfs, mode: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(disk.path())
        .output()
        .expect("running mount")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_volume_refuses_writes_or_the_start_and_loses_nothing() {
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

    // Mid-run: Linux refuses to make a mount read-only while a file on it is
    // open for writing (EBUSY), and SQLite keeps the database, its WAL and
    // shared memory open for writing. Should a kernel allow it, writes must
    // be refused with a 503 while reads go on, until it is writable again.
    if try_remount(&disk, "ro") {
        let (status, answer) = server
            .post_comment(&comment("/ro/", "on a read-only volume"))
            .await
            .expect("an answer");
        assert_unavailable(status, &answer);
        assert_eq!(
            server.thread("/ro/").await,
            (StatusCode::OK, thread_before.clone())
        );
        disk.remount("rw");
        poll_until(
            "a submission accepted after remounting rw",
            Duration::from_secs(10),
            || async {
                let (status, _) = server
                    .post_comment(&comment("/ro/", "after remounting"))
                    .await
                    .ok()?;
                (status == StatusCode::ACCEPTED).then_some(())
            },
        )
        .await;
        eprintln!("read-only volume mid-run: writes 503, reads 200, recovered after remounting rw");
    } else {
        eprintln!(
            "read-only volume mid-run: the kernel refused the remount (the database is open for writing)"
        );
        assert_eq!(
            server.thread("/ro/").await,
            (StatusCode::OK, thread_before.clone())
        );
    }
    let stored_before = server.all_comments("pending").await;
    assert!(stored_before.contains_key(&pending));
    server.stop().await;

    // A restart onto a read-only volume: refuse to start, say why, exit non-zero.
    disk.remount("ro");
    let (status, took, said) = Server::start_expecting_failure(&launch).await;
    assert!(
        !status.success(),
        "marginalia served from a read-only volume:\n{said}"
    );
    assert!(
        said.contains("opening SQLite at") && said.contains("unable to open database file"),
        "an unclear start-up error:\n{said}"
    );
    assert!(took < Duration::from_secs(10), "refusing to start took {took:?}");

    // Writable again: everything is there and submissions are accepted.
    disk.remount("rw");
    let server = Server::start(&launch).await;
    assert_eq!(server.all_comments("pending").await, stored_before);
    assert_eq!(server.thread("/ro/").await, (StatusCode::OK, thread_before));
    server.submit("/ro/", "after the volume is writable again").await;
    assert_eq!(sqlite_integrity(&url).await, ["ok"]);
    server.assert_no_panic();
    eprintln!(
        "read-only volume at start-up: {status} after {took:?} ({}); after remounting rw all {} \
         comments there and a submission accepted",
        said.lines()
            .find(|line| line.contains("unable to open"))
            .unwrap_or("")
            .trim(),
        stored_before.len()
    );
}
