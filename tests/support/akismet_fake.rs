//! A local stand-in for Akismet (a remote third party, the one thing the
//! tests may fake): a real HTTP server on a loopback port of its own that
//! speaks Akismet's documented REST protocol (version 1.1): form-encoded
//! POSTs to `/1.1/verify-key`, `/1.1/comment-check`, `/1.1/submit-spam` and
//! `/1.1/submit-ham`, each with `api_key`; `invalid` plus an
//! `X-akismet-debug-help` header for a wrong key or a missing required field;
//! `true`/`false` from comment-check; Akismet's thanks from the submissions.
//!
//! It records every form it receives, and the test programs it: the verdict
//! comment-check gives, a delay before answering, or an HTTP status instead
//! of an answer (Akismet down). (`#[path]`-included: `tests/support/` is not
//! a test target of its own.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use tokio::sync::mpsc;
use warp::Filter;

/// The key the fake accepts.
pub const FAKE_KEY: &str = "test-akismet-key-0123";

/// What comment-check's submissions thank for, as Akismet words it.
const THANKS: &str = "Thanks for making the web a better place.";

/// One call as the fake got it.
#[derive(Debug, Clone)]
pub struct AkismetCall {
    /// `comment-check`, `submit-spam`, `submit-ham` or `verify-key`.
    pub endpoint: String,
    /// Every field, decoded (a field sent twice keeps its last value; none is).
    pub form: HashMap<String, String>,
    /// Field names in the order they came.
    pub names: Vec<String>,
    pub content_type: Option<String>,
    pub received_at: Instant,
    /// When the fake answered (after its delay).
    pub replied_at: Instant,
    pub answered: StatusCode,
}

impl AkismetCall {
    /// A field's value; panics when the field was not sent.
    pub fn field(&self, name: &str) -> &str {
        self.form
            .get(name)
            .unwrap_or_else(|| panic!("`{name}` was not sent to {}: {:?}", self.endpoint, self.names))
    }
}

/// How the fake answers now.
#[derive(Debug, Clone)]
struct Behaviour {
    spam: bool,
    delay: Duration,
    status: Option<StatusCode>,
}

/// A running fake; it stops when dropped.
pub struct AkismetFake {
    address: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    received: mpsc::UnboundedReceiver<AkismetCall>,
    server: tokio::task::JoinHandle<()>,
}

impl AkismetFake {
    /// A fake that answers at once, and `false` (not spam).
    pub async fn start() -> AkismetFake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the Akismet fake");
        let address = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(Behaviour {
            spam: false,
            delay: Duration::ZERO,
            status: None,
        }));
        let (sender, received) = mpsc::unbounded_channel();
        let shared = behaviour.clone();
        let route = warp::post()
            .and(warp::path!("1.1" / String))
            .and(warp::header::optional::<String>("content-type"))
            .and(warp::body::bytes())
            .then(
                move |endpoint: String, content_type: Option<String>, body: Bytes| {
                    let behaviour = shared.lock().unwrap().clone();
                    let sender = sender.clone();
                    async move {
                        let received_at = Instant::now();
                        let pairs: Vec<(String, String)> =
                            url::form_urlencoded::parse(&body).into_owned().collect();
                        let names = pairs.iter().map(|(name, _)| name.clone()).collect();
                        let form: HashMap<String, String> = pairs.into_iter().collect();
                        tokio::time::sleep(behaviour.delay).await;
                        let (status, text, debug_help) = match behaviour.status {
                            Some(status) => (status, "Internal Server Error".to_owned(), None),
                            None => answer(&endpoint, &form, behaviour.spam),
                        };
                        let _ = sender.send(AkismetCall {
                            endpoint,
                            form,
                            names,
                            content_type,
                            received_at,
                            replied_at: Instant::now(),
                            answered: status,
                        });
                        let mut response = warp::http::Response::builder()
                            .status(status)
                            .header("content-type", "text/plain; charset=utf-8");
                        if let Some(help) = debug_help {
                            response = response.header("X-akismet-debug-help", help);
                        }
                        response.body(text).unwrap()
                    }
                },
            );
        let server = tokio::spawn(warp::serve(route).incoming(listener).run());
        AkismetFake {
            address,
            behaviour,
            received,
            server,
        }
    }

    /// The API base to configure (`MARGINALIA_AKISMET_URL`).
    pub fn url(&self) -> String {
        format!("http://{}/1.1", self.address)
    }

    /// comment-check answers `true` (spam) from now on, or `false`.
    pub fn set_spam(&self, spam: bool) {
        self.behaviour.lock().unwrap().spam = spam;
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.behaviour.lock().unwrap().delay = delay;
    }

    /// Answer this status (and no verdict) to everything, or answer normally.
    pub fn set_status(&self, status: Option<StatusCode>) {
        self.behaviour.lock().unwrap().status = status;
    }

    /// The next call; `None` if none arrives within `limit`.
    pub async fn next_call_within(&mut self, limit: Duration) -> Option<AkismetCall> {
        tokio::time::timeout(limit, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next call to `endpoint`, skipping others; panics after 30 s.
    pub async fn next_call_to(&mut self, endpoint: &str) -> AkismetCall {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let call = self
                .next_call_within(left)
                .await
                .unwrap_or_else(|| panic!("no call to {endpoint} reached the Akismet fake"));
            if call.endpoint == endpoint {
                return call;
            }
        }
    }
}

/// What Akismet answers to a well-formed request, per its documentation.
fn answer(
    endpoint: &str,
    form: &HashMap<String, String>,
    spam: bool,
) -> (StatusCode, String, Option<String>) {
    let invalid = |help: &str| (StatusCode::OK, "invalid".to_owned(), Some(help.to_owned()));
    if form.get("api_key").map(String::as_str) != Some(FAKE_KEY) {
        return invalid("Invalid API key.");
    }
    let Some(blog) = form.get("blog").filter(|blog| !blog.is_empty()) else {
        return invalid("Empty \"blog\" value");
    };
    if !blog.starts_with("http") {
        return invalid("The blog parameter must be a full URL");
    }
    match endpoint {
        "verify-key" => (StatusCode::OK, "valid".to_owned(), None),
        "comment-check" | "submit-spam" | "submit-ham" => {
            if form.get("user_ip").is_none_or(|ip| ip.is_empty()) {
                return invalid("Empty \"user_ip\" value");
            }
            if endpoint == "comment-check" {
                (StatusCode::OK, spam.to_string(), None)
            } else {
                (StatusCode::OK, THANKS.to_owned(), None)
            }
        }
        _ => (StatusCode::NOT_FOUND, "not found".to_owned(), None),
    }
}

impl Drop for AkismetFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}
