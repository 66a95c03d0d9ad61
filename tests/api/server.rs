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
    assert_header_fields_too_large(&answer);
    assert!(closed.is_ok(), "the connection was left open");
    // The service is still fine for everyone else.
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

/// `answer` is a whole HTTP/1.1 431 with the JSON error body, closing.
fn assert_header_fields_too_large(answer: &[u8]) {
    let answer = String::from_utf8_lossy(answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete answer");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 431"), "got {answer:?}");
    assert!(head.contains("\r\ncontent-type: application/json"), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(head.contains("\r\ncache-control: no-store"), "{head}");
    assert!(
        head.contains(&format!("\r\ncontent-length: {}", body.len())),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"], "request_header_fields_too_large", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty())
    );
}

/// Sends a GET of `/healthz` with `count` headers of `size` bytes each and
/// reads the answer until the server closes (or 5 s pass).
async fn get_with_headers(app: &TestApp, count: usize, size: usize) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    let filler = "b".repeat(size);
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for n in 0..count {
        request.push_str(&format!("X-Filler-{n}: {filler}\r\n"));
    }
    request.push_str("\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    (answer, closed.is_ok())
}

#[tokio::test]
async fn about_100_kb_of_headers_over_many_fields_get_431_with_the_json_error() {
    let app = spawn_app(Backend::Sqlite).await;
    // 50 fields of 2 KiB: each one small, together over the limit.
    let (answer, closed) = get_with_headers(&app, 50, 2048).await;
    assert_header_fields_too_large(&answer);
    assert!(closed, "the connection was left open");
}

#[tokio::test]
async fn headers_well_under_the_limit_are_served() {
    let app = spawn_app(Backend::Sqlite).await;
    // 8 fields of 2 KiB (16 KiB): large cookies and tokens still fit.
    let (answer, _) = get_with_headers(&app, 8, 2048).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "got {answer:?}");
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

/// Opens `count` connections that each send `bytes` and then nothing more.
async fn silent_connections(app: &TestApp, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        stream.write_all(bytes).await.unwrap();
        streams.push(stream);
    }
    // Give the accept loop time to take them all, so they hold every slot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    streams
}

/// `/healthz` answers 200 within `limit` (a generous bound: the assertion is
/// that it answers at all while other clients try to hold every slot).
async fn health_answers_within(app: &TestApp, limit: Duration) {
    let response = tokio::time::timeout(limit, reqwest::get(app.url("/healthz")))
        .await
        .expect("/healthz did not answer: the silent connections hold the cap")
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
}

/// An HTTP/2 connection preface followed by an empty SETTINGS frame.
const HTTP2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn connections_that_send_one_byte_cannot_hold_the_connection_cap() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.max_connections = std::num::NonZeroU32::new(4).unwrap();
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    // `P` is the first byte of the HTTP/2 preface: not yet a protocol.
    let mut silent = silent_connections(&app, 4, b"P").await;
    health_answers_within(&app, Duration::from_secs(10)).await;
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
}

#[tokio::test]
async fn http2_connections_that_never_send_a_request_cannot_hold_the_connection_cap() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.max_connections = std::num::NonZeroU32::new(4).unwrap();
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut silent = silent_connections(&app, 4, HTTP2_PREFACE_AND_SETTINGS).await;
    health_answers_within(&app, Duration::from_secs(10)).await;
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
}

/// A minimal HTTP/2 client over a raw socket: enough to send a request and
/// answer the server's SETTINGS and PINGs like a live peer.
mod h2 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const CONTINUATION: u8 = 9;
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    /// The largest frame payload a peer must accept without asking.
    pub const MAX_FRAME: usize = 16_384;

    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    pub async fn write_frame(stream: &mut TcpStream, kind: u8, flags: u8, id: u32, payload: &[u8]) {
        let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        frame.extend([kind, flags]);
        frame.extend(id.to_be_bytes());
        frame.extend(payload);
        stream.write_all(&frame).await.unwrap();
    }

    /// The next frame, or `None` once the server has closed the connection.
    pub async fn read_frame(stream: &mut TcpStream) -> Option<Frame> {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await.ok()?;
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// An HPACK integer with an `prefix_bits`-bit prefix.
    fn integer(out: &mut Vec<u8>, first: u8, prefix_bits: u32, mut value: usize) {
        let max = (1usize << prefix_bits) - 1;
        if value < max {
            out.push(first | value as u8);
            return;
        }
        out.push(first | max as u8);
        value -= max;
        while value >= 128 {
            out.push((value % 128) as u8 | 0x80);
            value /= 128;
        }
        out.push(value as u8);
    }

    /// A header block of literal fields without indexing (no Huffman).
    pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (name, value) in fields {
            block.push(0);
            integer(&mut block, 0, 7, name.len());
            block.extend(name.as_bytes());
            integer(&mut block, 0, 7, value.len());
            block.extend(value.as_bytes());
        }
        block
    }

    /// Connects, sends the preface and SETTINGS, then a GET of `path` with
    /// `extra` header fields on stream 1 (split into CONTINUATION frames
    /// when it is large).
    pub async fn get(address: std::net::SocketAddr, path: &str, extra: &[(&str, &str)]) -> TcpStream {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(super::HTTP2_PREFACE_AND_SETTINGS).await.unwrap();
        let mut fields = vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "x"),
        ];
        fields.extend_from_slice(extra);
        let block = header_block(&fields);
        let mut chunks = block.chunks(MAX_FRAME).peekable();
        let mut kind = HEADERS;
        while let Some(chunk) = chunks.next() {
            let mut flags = if kind == HEADERS { END_STREAM } else { 0 };
            if chunks.peek().is_none() {
                flags |= END_HEADERS;
            }
            write_frame(&mut stream, kind, flags, 1, chunk).await;
            kind = CONTINUATION;
        }
        stream
    }

    /// Reads frames, acknowledging SETTINGS and PINGs, until stream 1 ends.
    /// Returns its header block (HPACK, as sent) and its body.
    pub async fn response(stream: &mut TcpStream) -> (Vec<u8>, Vec<u8>) {
        let (mut headers, mut body) = (Vec::new(), Vec::new());
        while let Some(frame) = read_frame(stream).await {
            answer_control_frame(stream, &frame).await;
            if frame.stream != 1 {
                continue;
            }
            match frame.kind {
                HEADERS | CONTINUATION => headers.extend(&frame.payload),
                DATA => body.extend(&frame.payload),
                _ => {}
            }
            if frame.flags & END_STREAM != 0 && (frame.kind == HEADERS || frame.kind == DATA) {
                break;
            }
        }
        (headers, body)
    }

    /// Acknowledges SETTINGS and PINGs as a live client does.
    pub async fn answer_control_frame(stream: &mut TcpStream, frame: &Frame) {
        if frame.flags & ACK == 0 {
            match frame.kind {
                SETTINGS => write_frame(stream, SETTINGS, ACK, 0, &[]).await,
                PING => write_frame(stream, PING, ACK, 0, &frame.payload).await,
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn an_http2_connection_left_idle_is_closed_even_while_it_answers_pings() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = h2::get(app.address, "/healthz", &[]).await;
    let (headers, body) = h2::response(&mut stream).await;
    // `:status: 200` is entry 8 of HPACK's static table.
    assert_eq!(headers.first(), Some(&0x88), "{headers:?}");
    assert_eq!(body, br#"{"status":"ok"}"#);

    // Now stay, answering whatever the server sends, and send no request.
    let started = Instant::now();
    let mut saw_goaway = false;
    let closed = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(frame) = h2::read_frame(&mut stream).await {
            saw_goaway |= frame.kind == h2::GOAWAY;
            h2::answer_control_frame(&mut stream, &frame).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after {:?}", started.elapsed());
    assert!(saw_goaway, "closed without a GOAWAY");
}

#[tokio::test]
async fn oversized_http2_headers_get_431_with_the_json_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let filler = "c".repeat(2048);
    let names: Vec<String> = (0..20).map(|n| format!("x-filler-{n}")).collect();
    let fields: Vec<(&str, &str)> = names
        .iter()
        .map(|name| (name.as_str(), filler.as_str()))
        .collect();
    let mut stream = h2::get(app.address, "/healthz", &fields).await;
    let (headers, body) = h2::response(&mut stream).await;
    // HPACK's static table has no `:status: 431`, so the value is a string:
    // plain (length 3, then "431") or Huffman-coded (flag and length 3, then
    // the codes of '4', '3', '1' padded with ones).
    let plain = [0x03, b'4', b'3', b'1'];
    let huffman = [0x83, 0x69, 0x90, 0xff];
    assert!(
        headers
            .windows(4)
            .any(|window| window == plain || window == huffman),
        "{headers:?}"
    );
    let body: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(body["error"], "request_header_fields_too_large", "{body}");
}

/// Sends `requests` on one connection (the last one closing it) and returns
/// everything the server wrote back.
async fn exchange(app: &TestApp, requests: &str) -> String {
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes after the last request")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The value of header `name` in a response head, lower-cased names.
fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_wherever_get_is_answered() {
    let app = spawn_app(Backend::Sqlite).await;
    app.publish("/p/", "hello").await;
    let authorization = format!("Authorization: Bearer {ADMIN_TOKEN}\r\n");
    for path in [
        "/healthz",
        "/readyz",
        "/api/comments?uri=/p/",
        "/api/counts?uri=/p/",
        "/api/admin/comments",
        "/api/admin/stats",
        "/embed.js",
        "/embed/locales/de.json",
        "/embed/locales/xx.json",
        "/admin",
        "/admin/locales/ar.json",
        "/demo",
        "/openapi.yaml",
        "/no-such-path",
    ] {
        // HEAD then GET on one connection: were a body sent after the HEAD's
        // head, the GET's status line would not follow it directly.
        let requests = format!(
            "HEAD {path} HTTP/1.1\r\nHost: x\r\n{authorization}\r\n\
             GET {path} HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n"
        );
        let answer = exchange(&app, &requests).await;
        let (head_answer, rest) = answer.split_once("\r\n\r\n").expect("a HEAD answer");
        let (get_answer, get_body) = rest.split_once("\r\n\r\n").expect("a GET answer");
        assert!(
            get_answer.starts_with("HTTP/1.1 "),
            "{path}: a body followed the HEAD answer: {rest:?}"
        );
        assert_eq!(
            head_answer.lines().next(),
            get_answer.lines().next(),
            "{path}: HEAD and GET statuses"
        );
        for name in ["content-type", "cache-control", "etag", "x-content-type-options"] {
            assert_eq!(
                header_value(head_answer, name),
                header_value(get_answer, name),
                "{path}: {name}"
            );
        }
        let get_length = get_body.len().to_string();
        assert_eq!(
            header_value(head_answer, "content-length"),
            Some(get_length.as_str()),
            "{path}"
        );
    }
    // /metrics counts requests, so its body changes between calls.
    let metrics = exchange(
        &app,
        "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let (head, body) = metrics.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        header_value(head, "content-type")
            .is_some_and(|value| value.starts_with("application/openmetrics-text"))
    );
    assert_eq!(body, "");
}

#[tokio::test]
async fn head_is_listed_in_allow_and_refused_where_get_is_not_answered() {
    let app = spawn_app(Backend::Sqlite).await;
    let refused = app
        .client
        .head(app.url("/api/admin/comments/1/approve"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.headers()["allow"], "POST");
    assert_eq!(refused.text().await.unwrap(), "");

    let wrong_method = app.client.put(app.url("/healthz")).send().await.unwrap();
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD");
    let wrong_method = app.client.put(app.url("/api/comments")).send().await.unwrap();
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD, POST");
}
