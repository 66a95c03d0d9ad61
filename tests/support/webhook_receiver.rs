//! A real HTTP server for tests that receives webhook calls on a loopback
//! port of its own: it records each request as it arrived (method, path,
//! headers, the raw body bytes) and answers `200`, or `503` for as many
//! requests as the test asks, to play a receiver that is down.
//! (`#[path]`-included: `tests/support/` is not a test target of its own.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tokio::sync::mpsc;
use warp::Filter;

/// One request as the receiver got it, and what it answered.
#[derive(Debug, Clone)]
pub struct ReceivedCall {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    /// The body exactly as sent (what a signature is computed over).
    pub body: Bytes,
    pub answered: StatusCode,
}

impl ReceivedCall {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body parsed as JSON (panics when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "the webhook body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A running receiver; it stops when dropped.
pub struct WebhookReceiver {
    address: SocketAddr,
    received: mpsc::UnboundedReceiver<ReceivedCall>,
    failures_left: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the webhook receiver");
        let address = listener.local_addr().unwrap();
        let (sender, received) = mpsc::unbounded_channel();
        let failures_left = Arc::new(AtomicUsize::new(0));
        let failures = failures_left.clone();
        let route = warp::method()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: Method, path: warp::path::FullPath, headers: HeaderMap, body: Bytes| {
                    // Take one failure if any is left: answer 503 for it.
                    let failing = failures
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1))
                        .is_ok();
                    let answered = if failing {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    };
                    let _ = sender.send(ReceivedCall {
                        method,
                        path: path.as_str().to_owned(),
                        headers,
                        body,
                        answered,
                    });
                    warp::reply::with_status("", answered)
                },
            );
        let server = tokio::spawn(warp::serve(route).incoming(listener).run());
        WebhookReceiver {
            address,
            received,
            failures_left,
            server,
        }
    }

    /// The URL to configure as a webhook (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answer `503` to the next `count` requests.
    pub fn fail_next(&self, count: usize) {
        self.failures_left.store(count, Ordering::Release);
    }

    /// The next request; `None` if none arrives within `limit`.
    pub async fn next_call_within(&mut self, limit: Duration) -> Option<ReceivedCall> {
        tokio::time::timeout(limit, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next request; panics if none arrives within 30 s (a safety net,
    /// not a measure of speed).
    pub async fn next_call(&mut self) -> ReceivedCall {
        self.next_call_within(Duration::from_secs(30))
            .await
            .expect("no webhook call arrived at the test receiver")
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
