//! The accept loop: slow clients are cut off, connections are capped, and a
//! shutdown lets in-flight requests finish.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads until the peer closes; true when it did so within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_disconnected() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Keep sending a header line every 200 ms: never finishing the request.
    let dribble = async {
        for n in 0..50 {
            if stream
                .write_all(format!("X-Slow-{n}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), dribble).await;
    assert!(
        closed_within(&mut stream, Duration::from_millis(500)).await,
        "still open after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_a_408_and_nothing_is_stored() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.request_timeout = Duration::from_secs(1);
    })
    .await;
    let comment = serde_json::to_vec(&valid_comment()).unwrap();
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/comments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n",
                comment.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 200 ms: the whole body would take many seconds.
    let mut answer = Vec::new();
    for byte in &comment {
        if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
            break;
        }
        let mut buffer = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(read)) => answer.extend_from_slice(&buffer[..read]),
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "got {answer:?} after {:?}",
        started.elapsed()
    );
    assert!(answer.contains("\"error\":\"request_timeout\""), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(closed_within(&mut stream, Duration::from_secs(1)).await);
    // The half-sent comment was never stored.
    let queue = app.admin_list("status=pending").await;
    assert_eq!(queue["comments"].as_array().unwrap().len(), 0, "{queue}");
}

#[tokio::test]
async fn oversized_headers_are_refused_with_431_and_the_connection_closed() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    // Past hyper's read buffer (about 400 KiB): the server must stop reading
    // rather than buffer whatever a client sends.
    let filler = "a".repeat(8 * 1024);
    let mut request = String::from("GET /api/comments?uri=/p/ HTTP/1.1\r\nHost: x\r\n");
    for n in 0..64 {
        request.push_str(&format!("X-Filler-{n}: {filler}\r\n"));
    }
    request.push_str("\r\n");
    // The server may close before it has read everything: a failed write is fine.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "got {answer:?}");
    assert!(closed.is_ok(), "the connection was left open");
    // The service is still fine for everyone else.
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn an_idle_connection_that_never_sends_a_request_is_closed() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.max_connections = std::num::NonZeroU32::new(1).unwrap();
    })
    .await;
    // The one allowed connection, held open by an unfinished request.
    let mut holder = TcpStream::connect(app.address).await.unwrap();
    holder
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let waiting = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/healthz");
        async move {
            let started = Instant::now();
            let status = client.get(url).send().await.unwrap().status();
            (status, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection was served beyond the cap"
    );
    drop(holder);
    let (status, waited) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_submission_finish_and_keeps_it() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let body = serde_json::to_vec(&valid_comment()).unwrap();
    let (head, tail) = body.split_at(body.len() / 2);

    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let request = format!(
        "POST /api/comments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Shut down while the request is half sent, then finish sending it.
    let stopping = tokio::spawn(async move {
        app.stop().await;
        app
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(tail).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    let app = tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server stops within its grace period")
        .unwrap();
    // The acknowledged comment is there after a restart.
    let app = app.restart().await;
    assert_eq!(app.admin_list("").await["comments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    assert!(closed_within(&mut stream, Duration::from_secs(3)).await);
}
