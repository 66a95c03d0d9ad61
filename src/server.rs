//! The accept loop. `warp::serve` has no header-read timeout and no connection
//! cap, and its acceptor cannot be wrapped, so the service runs the warp
//! filters (`warp::service`) under hyper-util's connection builder here:
//!
//! - a semaphore caps open connections (`MAX_CONNECTIONS`); more wait in the
//!   kernel's backlog instead of exhausting memory or file descriptors;
//! - HTTP/1 connections must deliver their headers within a timeout (and a
//!   new connection its first byte), so a client dribbling bytes, or sending
//!   none, cannot hold a connection forever;
//! - each request must be answered within a timeout, body upload included, so
//!   a client trickling its body cannot hold a handler (and its memory) either;
//! - the peer address is put into each request's extensions as [`ClientAddr`]
//!   (warp's `addr::remote()` only works under warp's own server);
//! - on shutdown the listener closes, idle connections are closed, and
//!   in-flight requests get a grace period to finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_service::Service;
use warp::Filter;
use warp::reply::Reply;

use crate::error::ApiError;

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
    let mut builder = ConnectionBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
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
        let (stream, peer) = tokio::select! {
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
        let service = service.clone();
        let request_timeout = limits.request_timeout;
        let request_handler = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            let mut service = service.clone();
            let answer = service.call(request);
            async move {
                match tokio::time::timeout(request_timeout, answer).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        tracing::info!(%peer, status = 408, "request timed out");
                        Ok(ApiError::RequestTimeout {
                            seconds: request_timeout.as_secs(),
                        }
                        .into_response())
                    }
                }
            }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            // hyper's header timer only starts with the first byte: a client
            // that connects and says nothing would hold its slot forever.
            let mut first_byte = [0u8; 1];
            if tokio::time::timeout(header_read_timeout, stream.peek(&mut first_byte))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "closed a connection that sent nothing");
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), request_handler);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(
            grace_seconds = limits.shutdown_grace.as_secs(),
            "grace period over; closing the remaining connections"
        ),
    }
}
