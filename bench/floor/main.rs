//! The benchmark's floor: the least any server can do for `GET /api/comments`.
//!
//! A bare warp route that answers with the bytes the real service returned for
//! the benchmark thread (fetched once by `bench/run.sh` and written to a file),
//! held in memory, with the same `Content-Type`, the same `ETag` (a SHA-256 of
//! the body, cut to 16 bytes, as `src/routes/public.rs` computes it) and the
//! same `If-None-Match` → `304` behaviour. No database, no logging, no
//! middleware: every figure of the service is reported as a ratio to this one.
//! `POST /api/comments` reads the body (up to 128 KiB, as the service allows)
//! and answers `202` with a small fixed JSON body at once: the floor of a
//! submission (issue #14's interleaved A/B, `bench/ab.py`).
//!
//! ```text
//! cargo run --release --example floor -- --bind 127.0.0.1:3999 --body-file bench/out/thread.json
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// What the floor answers to a submission (the shape of the service's 202).
const SUBMITTED: &[u8] = br#"{"id":1,"status":"pending","message":"Your comment is awaiting moderation."}"#;

#[derive(Debug, Parser)]
#[command(about = "A minimal warp server serving one thread's bytes from memory (the benchmark floor).")]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:3999")]
    bind: SocketAddr,
    /// The exact body of the real service's `GET /api/comments` response.
    #[arg(long)]
    body_file: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body = Bytes::from(
        std::fs::read(&args.body_file).with_context(|| format!("reading {}", args.body_file.display()))?,
    );
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    let etag = HeaderValue::from_str(&etag)?;

    let route = warp::path!("api" / "comments")
        .and(warp::get())
        .and(warp::header::optional::<String>("if-none-match"))
        .map(move |if_none_match: Option<String>| {
            let matches = if_none_match.is_some_and(|value| {
                value
                    .split(',')
                    .any(|tag| tag.trim() == "*" || tag.trim().trim_start_matches("W/") == etag)
            });
            let mut response = if matches {
                let mut response = Response::new(Bytes::new().into());
                *response.status_mut() = StatusCode::NOT_MODIFIED;
                response
            } else {
                let mut response = Response::new(body.clone().into());
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            };
            response.headers_mut().insert(ETAG, etag.clone());
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        });

    let submit = warp::path!("api" / "comments")
        .and(warp::post())
        .and(warp::body::content_length_limit(128 * 1024))
        .and(warp::body::bytes())
        .map(|_body: Bytes| {
            let mut response = Response::new(Bytes::from_static(SUBMITTED).into());
            *response.status_mut() = StatusCode::ACCEPTED;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        });
    let route = route.or(submit);

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    eprintln!("floor listening on {}", listener.local_addr()?);
    warp::serve(route)
        .incoming(listener)
        .graceful(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .run()
        .await;
    Ok(())
}
