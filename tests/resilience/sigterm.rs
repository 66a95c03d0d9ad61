//! SIGTERM under load: requests already being received finish with a
//! complete answer, every 202 is stored, and the process exits on time with
//! status 0.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::harness::*;

const GRACE_SECS: u64 = 5;
/// How long past the grace period the exit may take (closing the pool, flushing the log).
const EXIT_MARGIN: Duration = Duration::from_secs(3);
const WRITERS: usize = 16;

/// A status and JSON body, or why there was none.
type Answer = reqwest::Result<(StatusCode, Value)>;
/// Requests whose body is still arriving when the signal comes.
const SLOW_REQUESTS: usize = 16;

/// Sends the headers and half the body now; the caller sends the rest
/// through the returned channel.
fn slow_submission(
    client: &reqwest::Client,
    url: &str,
    body: &str,
) -> (mpsc::Sender<Vec<u8>>, JoinHandle<Answer>) {
    let bytes = serde_json::to_vec(&comment("/slow/", body)).unwrap();
    let head = &bytes[..bytes.len() / 2];
    let (chunks, queue) = mpsc::channel::<Vec<u8>>(2);
    chunks.try_send(head.to_vec()).unwrap();
    let stream = futures_util::stream::unfold(queue, |mut queue| async move {
        queue
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), queue))
    });
    let request = client
        .post(url)
        .header("content-type", "application/json")
        .header("content-length", bytes.len())
        .body(reqwest::Body::wrap_stream(stream));
    let answer = tokio::spawn(async move {
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json::<Value>().await?))
    });
    (chunks, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_what_was_accepted_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("marginalia.db").display());
    let launch = Launch::new(&url, dir.path()).env("MARGINALIA_SHUTDOWN_GRACE", &GRACE_SECS.to_string());
    let mut server = Server::start(&launch).await;

    let load = WriteLoad::start(&server.base, WRITERS, "sigterm");
    load.wait_for_acks(200).await;

    // Requests the server has accepted and is reading when the signal comes.
    let mut slow = Vec::new();
    for n in 0..SLOW_REQUESTS {
        let client = reqwest::Client::builder().timeout(REQUEST_LIMIT).build().unwrap();
        let body = format!("slow comment {n}");
        let (chunks, answer) = slow_submission(&client, &server.url("/api/comments"), &body);
        slow.push((body, chunks, answer));
    }
    // Give every slow request time to be accepted and its headers read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked_before_signal = load.acked();
    server.sigterm();
    let signalled = Instant::now();
    // The rest of each slow body arrives well inside the grace period.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (body, chunks, _) in &slow {
        let bytes = serde_json::to_vec(&comment("/slow/", body)).unwrap();
        let tail = bytes[bytes.len() / 2..].to_vec();
        chunks.send(tail).await.expect("the body stream is still open");
    }
    let mut slow_acknowledged = std::collections::HashMap::new();
    for (body, chunks, answer) in slow {
        drop(chunks);
        let (status, answer) = answer.await.unwrap().unwrap_or_else(|error| {
            panic!("a request accepted before SIGTERM got no complete answer: {error:?}")
        });
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        slow_acknowledged.insert(answer["id"].as_i64().unwrap(), body);
    }

    let exited = server
        .wait_exit(Duration::from_secs(GRACE_SECS) + EXIT_MARGIN)
        .await;
    let (status, took) =
        exited.unwrap_or_else(|| panic!("still running {GRACE_SECS} s + margin after SIGTERM"));
    let since_signal = signalled.elapsed();
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    let outcome = load.finish().await;
    assert!(
        outcome.other_statuses.is_empty(),
        "answers other than 202: {:?}",
        &outcome.other_statuses[..outcome.other_statuses.len().min(5)]
    );
    assert_eq!(outcome.incomplete, 0, "responses cut off mid-body");
    server.assert_no_panic();

    let server = Server::start(&launch).await;
    let stored = server.all_comments("pending").await;
    let mut acknowledged = outcome.acknowledged.clone();
    acknowledged.extend(slow_acknowledged.clone());
    let unacknowledged = assert_all_stored(&acknowledged, &stored);
    assert_eq!(
        unacknowledged, 0,
        "a comment was stored but its writer got no 202"
    );
    assert_eq!(sqlite_integrity(&url).await, ["ok"]);
    eprintln!(
        "SIGTERM: {} acknowledged under load ({acked_before_signal} before the signal), {} slow requests \
         accepted before it all answered 202, {} stored; {} requests refused after the listener closed, \
         0 cut off; {status} {:.2} s after the signal (waited {:.2} s, grace {GRACE_SECS} s)",
        outcome.acknowledged.len(),
        slow_acknowledged.len(),
        stored.len(),
        outcome.no_response,
        since_signal.as_secs_f64(),
        took.as_secs_f64(),
    );
}
