//! The accept loop and the server's limits. `warp::serve` has no header-read
//! timeout and no connection cap, and its acceptor cannot be wrapped, so the
//! service runs the warp filters (`warp::service`) under hyper's HTTP/1 and
//! HTTP/2 connections here:
//!
//! - a semaphore caps open connections (`MAX_CONNECTIONS`); more wait in the
//!   kernel's backlog instead of exhausting memory or file descriptors;
//! - the protocol is told from the first bytes here rather than by
//!   hyper-util's auto builder, whose detection waits without a deadline;
//! - a connection with no request in progress must deliver a complete request
//!   head within the header-read timeout, in both protocols: counted from
//!   the connection's start (so a client sending one byte, or an HTTP/2
//!   preface and nothing else, is closed), and from the end of its last
//!   answer (so an idle keep-alive is closed too; HTTP/2 gets a GOAWAY
//!   first, and keep-alive pings drop a peer that stops answering);
//! - each request must be answered within a timeout, body upload included, so
//!   a client trickling its body cannot hold a handler (and its memory) either;
//! - request heads are limited to [`MAX_REQUEST_HEAD_BYTES`] and
//!   [`MAX_HEADER_FIELDS`]; beyond them the answer is `431` with the JSON
//!   error body, and on HTTP/1 the connection is closed;
//! - `HEAD` is answered wherever `GET` is: the filters see a `GET`, and the
//!   answer goes out with the GET's status and headers and no body;
//! - the peer address is put into each request's extensions as [`ClientAddr`]
//!   (warp's `addr::remote()` only works under warp's own server);
//! - on shutdown the listener closes, idle connections are closed, and
//!   in-flight requests get a grace period to finish.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderValue, Method, Request, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service;
use warp::Filter;
use warp::reply::Reply;

use crate::error::ApiError;

/// Largest accepted request head: the request line and all header fields
/// (on HTTP/2, the header list size of RFC 9113: each field's name and value
/// plus 32). Larger gets `431 request_header_fields_too_large`.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;

/// Most header fields an HTTP/1 request may carry (hyper's parser limit;
/// raising it would allocate on every request). More gets 431 too.
pub const MAX_HEADER_FIELDS: usize = 100;

/// HTTP/2 heads are measured in the request handler, which answers with our
/// JSON body; the h2 codec refuses (with a bare 431) only lists beyond this,
/// so it never decodes an unbounded list.
const HTTP2_HEADER_LIST_BACKSTOP: u32 = 2 * MAX_REQUEST_HEAD_BYTES as u32;

/// How long an idle HTTP/2 connection that was sent a GOAWAY may take to
/// close before it is dropped (a peer that ignores the GOAWAY).
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What every HTTP/2 connection starts with (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The TCP peer of a request, as the accept loop saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Serves `filter` on `listener` until `shutdown` resolves, then drains.
pub async fn serve<F>(
    listener: TcpListener,
    filter: F,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let service = warp::service(filter);
    let builders = Arc::new(ProtocolBuilders::new(&limits));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    // Each connection holds a receiver; `closed()` tells when all have ended.
    let (stop_connections, _) = watch::channel(());
    tokio::pin!(shutdown);

    loop {
        // Take a connection slot before accepting, so that beyond the cap
        // clients wait in the backlog rather than being accepted and starved.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Usually EMFILE or a connection reset before accept: back
                    // off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let accepted_at = Instant::now();
        let activity = Arc::new(Activity::new(accepted_at));
        let request_timeout = limits.request_timeout;
        let request_handler = hyper::service::service_fn({
            let service = service.clone();
            let activity = activity.clone();
            move |mut request: Request<Incoming>| {
                let in_flight = activity.start_request();
                request.extensions_mut().insert(ClientAddr(peer));
                let is_head = request.method() == Method::HEAD;
                if is_head {
                    *request.method_mut() = Method::GET;
                }
                // HTTP/1 heads are limited by hyper's buffer (`ProtocolBuilders`).
                let head_too_large = request.version() == Version::HTTP_2
                    && http2_header_list_size(&request) > MAX_REQUEST_HEAD_BYTES;
                let answer = (!head_too_large).then(|| service.clone().call(request));
                async move {
                    let response = match answer {
                        None => {
                            tracing::info!(%peer, status = 431, "request head too large");
                            head_too_large_error().into_response()
                        }
                        Some(answer) => match tokio::time::timeout(request_timeout, answer).await {
                            Ok(Ok(response)) => response,
                            Ok(Err(infallible)) => match infallible {},
                            Err(_) => {
                                tracing::info!(%peer, status = 408, "request timed out");
                                ApiError::RequestTimeout {
                                    seconds: request_timeout.as_secs(),
                                }
                                .into_response()
                            }
                        },
                    };
                    Ok::<_, Infallible>(finish(response, is_head, in_flight))
                }
            }
        });
        let builders = builders.clone();
        let mut stop = stop_connections.subscribe();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let detected = tokio::select! {
                detected = tokio::time::timeout_at(
                    accepted_at + header_read_timeout,
                    detect_protocol(&mut stream),
                ) => detected,
                _ = stop.changed() => return,
            };
            let (protocol, replay) = match detected {
                Ok(Ok(Some(detected))) => detected,
                Ok(Ok(None)) | Ok(Err(_)) => return,
                Err(_) => {
                    tracing::debug!(%peer, "closed a connection that did not start a request in time");
                    return;
                }
            };
            let io = TokioIo::new(ConnectionIo::new(stream, replay, protocol));
            let connection = builders.get(protocol).serve_connection(io, request_handler);
            tokio::pin!(connection);

            let mut stopping = false;
            let mut drop_at: Option<Instant> = None;
            loop {
                // While a request is in flight there is no deadline; look
                // again one timeout later rather than being woken at the end
                // of every request (a wake-up and a new timer per request
                // cost the cached read about a tenth of its throughput).
                let next_check = activity
                    .idle_deadline(header_read_timeout)
                    .unwrap_or_else(|| Instant::now() + header_read_timeout);
                tokio::select! {
                    ended = connection.as_mut() => {
                        if let Err(error) = ended {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed(), if !stopping => {
                        stopping = true;
                        if drop_at.is_none() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                    () = tokio::time::sleep_until(next_check), if drop_at.is_none() => {
                        if activity.idle_deadline(header_read_timeout).is_none_or(|at| at > Instant::now()) {
                            continue;
                        }
                        if !activity.has_served() || stopping || protocol == Protocol::Http1 {
                            // Nothing to be polite about: no request was
                            // ever completed, the server is leaving, or it
                            // is HTTP/1, which has no GOAWAY to send: an idle
                            // keep-alive or a head still dribbling in is
                            // closed at its deadline (hyper's own header-read
                            // timeout, not used, did the same).
                            tracing::debug!(%peer, "closed a connection that sent no complete request in time");
                            break;
                        }
                        connection.as_mut().graceful_shutdown();
                        drop_at = Some(Instant::now() + IDLE_CLOSE_GRACE);
                    }
                    () = sleep_until_some(drop_at) => break,
                }
            }
        });
    }

    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    let _ = stop_connections.send(());
    match tokio::time::timeout(limits.shutdown_grace, stop_connections.closed()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(
            grace_seconds = limits.shutdown_grace.as_secs(),
            "grace period over; closing the remaining connections"
        ),
    }
}

/// Waits until `deadline`, or forever when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The wire protocol of a connection, told from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Reads until the first bytes either are the HTTP/2 preface or cannot be;
/// returns what was read, for hyper to read again. `None` when the peer
/// closed first.
async fn detect_protocol(stream: &mut TcpStream) -> io::Result<Option<(Protocol, Bytes)>> {
    // Usually the whole first request head arrives in this one read.
    let mut read = BytesMut::with_capacity(4096);
    loop {
        if stream.read_buf(&mut read).await? == 0 {
            return Ok(None);
        }
        let compared = read.len().min(HTTP2_PREFACE.len());
        if read[..compared] != HTTP2_PREFACE[..compared] {
            return Ok(Some((Protocol::Http1, read.freeze())));
        }
        if compared == HTTP2_PREFACE.len() {
            return Ok(Some((Protocol::Http2, read.freeze())));
        }
    }
}

/// One connection builder per protocol, each set to its protocol only (so
/// hyper-util does no detection of its own).
struct ProtocolBuilders {
    http1: ConnectionBuilder<TokioExecutor>,
    http2: ConnectionBuilder<TokioExecutor>,
}

impl ProtocolBuilders {
    fn new(limits: &ServerLimits) -> Self {
        let mut builder = ConnectionBuilder::new(TokioExecutor::new());
        builder
            .http1()
            // No header-read timeout of hyper's own: it boxes, arms and
            // cancels a timer for every request head, 6 % of a cached read's
            // instructions (`bench/read_cost.py`). The connection's idle
            // deadline in `serve` already closes a connection whose head
            // does not arrive in time, counted from its start or its last
            // answer.
            .header_read_timeout(None)
            // A head that does not fit the read buffer is refused (431).
            .max_buf_size(MAX_REQUEST_HEAD_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            // A peer that stops answering pings is gone: close its connection.
            .keep_alive_interval(limits.header_read_timeout)
            .keep_alive_timeout(limits.header_read_timeout)
            .max_header_list_size(HTTP2_HEADER_LIST_BACKSTOP);
        Self {
            http1: builder.clone().http1_only(),
            http2: builder.http2_only(),
        }
    }

    fn get(&self, protocol: Protocol) -> &ConnectionBuilder<TokioExecutor> {
        match protocol {
            Protocol::Http1 => &self.http1,
            Protocol::Http2 => &self.http2,
        }
    }
}

/// The answer as it leaves: a HEAD's without its body, and counted as in
/// flight until its body has been sent.
fn finish<B: Body + Default>(
    mut response: http::Response<B>,
    is_head: bool,
    in_flight: InFlight,
) -> http::Response<TrackedBody<B>> {
    if is_head {
        drop_body(&mut response);
    }
    response.map(|body| TrackedBody {
        body,
        _in_flight: in_flight,
    })
}

/// The error for a request head over [`MAX_REQUEST_HEAD_BYTES`] or
/// [`MAX_HEADER_FIELDS`].
fn head_too_large_error() -> ApiError {
    ApiError::RequestHeaderFieldsTooLarge {
        max_bytes: MAX_REQUEST_HEAD_BYTES,
        max_fields: MAX_HEADER_FIELDS,
    }
}

/// The header list size of RFC 9113 §6.5.2, pseudo-header fields included.
fn http2_header_list_size<B>(request: &Request<B>) -> usize {
    const FIELD_OVERHEAD: usize = 32;
    let uri = request.uri();
    let pseudo_fields = [
        ":method".len() + request.method().as_str().len(),
        ":scheme".len() + uri.scheme_str().map_or(0, str::len),
        ":authority".len() + uri.authority().map_or(0, |authority| authority.as_str().len()),
        ":path".len() + uri.path_and_query().map_or(0, |path| path.as_str().len()),
    ];
    let pseudo: usize = pseudo_fields.iter().map(|size| size + FIELD_OVERHEAD).sum();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD)
        .sum();
    pseudo + fields
}

/// Turns a GET's answer into the HEAD's: same status and headers (with the
/// length the body would have had), no body.
fn drop_body<B: Body + Default>(response: &mut http::Response<B>) {
    let status = response.status();
    let may_have_body = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    if may_have_body
        && !response.headers().contains_key(CONTENT_LENGTH)
        && let Some(length) = response.body().size_hint().exact()
    {
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = Default::default();
}

/// What the connection's requests are doing, for its idle deadline. Read
/// by the connection's task only when its timer fires: the deadline only
/// ever moves later, so a timer set for an earlier one just looks again.
struct Activity {
    state: Mutex<ActivityState>,
}

struct ActivityState {
    in_flight: usize,
    /// When the connection last had nothing in flight.
    idle_since: Instant,
    served: bool,
}

impl Activity {
    fn new(accepted_at: Instant) -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                idle_since: accepted_at,
                served: false,
            }),
        }
    }

    fn start_request(self: &Arc<Self>) -> InFlight {
        let mut state = self.state.lock().expect("activity lock");
        state.in_flight += 1;
        state.served = true;
        InFlight(self.clone())
    }

    /// When the connection will have been idle for `limit`; `None` while a
    /// request is in flight.
    fn idle_deadline(&self, limit: Duration) -> Option<Instant> {
        let state = self.state.lock().expect("activity lock");
        (state.in_flight == 0).then(|| state.idle_since + limit)
    }

    fn has_served(&self) -> bool {
        self.state.lock().expect("activity lock").served
    }
}

/// A request in flight: from its complete head until its answer's body has
/// been handed to hyper (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().expect("activity lock");
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// A response body that keeps its request counted as in flight.
struct TrackedBody<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket as hyper sees it: the bytes read by protocol detection come
/// first, and on HTTP/1 hyper's own bodiless 431 is replaced by ours.
struct ConnectionIo {
    stream: TcpStream,
    replay: Bytes,
    rewrite_head_too_large: bool,
    /// Our 431, still to be written in place of hyper's.
    pending: Bytes,
}

impl ConnectionIo {
    fn new(stream: TcpStream, replay: Bytes, protocol: Protocol) -> Self {
        Self {
            stream,
            replay,
            rewrite_head_too_large: protocol == Protocol::Http1,
            pending: Bytes::new(),
        }
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let written = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.advance(written);
        }
        Poll::Ready(Ok(()))
    }

    /// Whether `buf` is hyper's automatic answer to a head over its limits:
    /// a 431 head written on its own, with no body. The service never
    /// answers 431 on HTTP/1, so nothing else looks like this.
    fn is_hypers_head_too_large(&self, buf: &[u8]) -> bool {
        self.rewrite_head_too_large
            && buf.len() <= 512
            && buf.starts_with(b"HTTP/1.1 431 ")
            && buf.ends_with(b"\r\n\r\n")
    }

    /// Takes hyper's 431 as written and queues ours in its place.
    fn replace_head_too_large(&mut self, cx: &mut Context<'_>, hypers: usize) -> Poll<io::Result<usize>> {
        self.rewrite_head_too_large = false;
        self.pending = head_too_large_answer();
        // Hyper's bytes count as written now; ours are flushed from here
        // and by `poll_flush`, which hyper calls before it closes.
        let _ = self.poll_pending(cx);
        Poll::Ready(Ok(hypers))
    }
}

/// Our whole HTTP/1 431: the JSON error, then the connection closes.
fn head_too_large_answer() -> Bytes {
    let error = head_too_large_error();
    let body = error.json_body();
    let mut response = error.into_response();
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status().as_str(),
        response.status().canonical_reason().unwrap_or_default()
    )
    .into_bytes();
    for (name, value) in response.headers() {
        answer.extend_from_slice(name.as_str().as_bytes());
        answer.extend_from_slice(b": ");
        answer.extend_from_slice(value.as_bytes());
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    answer.into()
}

impl AsyncRead for ConnectionIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let count = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..count]);
            this.replay.advance(count);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if this.is_hypers_head_too_large(buf) {
            return this.replace_head_too_large(cx, buf.len());
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        let mut non_empty = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(first), None) = (non_empty.next(), non_empty.next())
            && this.is_hypers_head_too_large(first)
        {
            return this.replace_head_too_large(cx, first.len());
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}
