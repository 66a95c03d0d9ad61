//! Several instances on one PostgreSQL database: whatever one instance
//! caches, a change made through another shows within a second. These run
//! when `MARGINALIA_TEST_DATABASE_URL` is set (as `.ci/run` does).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use crate::helpers::*;

/// A second instance on the same database as `app`.
pub(crate) async fn second_instance(app: &TestApp) -> marginalia::startup::App {
    let mut config = app.config.clone();
    config.bind = "127.0.0.1:0".parse().unwrap();
    marginalia::startup::App::build(&config).await.unwrap()
}

/// Polls `uri` on `address` until its thread has `count` comments; fails after `limit`.
async fn wait_for_count(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
    uri: &str,
    count: u64,
    limit: Duration,
) {
    let started = Instant::now();
    loop {
        let thread: Value = client
            .get(format!("http://{address}/api/comments?uri={uri}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if thread["total"] == count {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "after {limit:?} the thread still shows {thread}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the instance's listener is up (its cache serves only then):
/// two identical reads in a row while nothing changes is all we can observe,
/// so give the listener a moment after start.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_approval_through_one_instance_shows_on_the_other_within_a_second() {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let b = second_instance(&a).await;
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));
    settle().await;

    let first = a.publish("/multi/", "first").await;
    // B reads (and caches) the thread with one comment.
    wait_for_count(&a.client, b_address, "/multi/", 1, Duration::from_secs(1)).await;
    wait_for_count(&a.client, b_address, "/multi/", 1, Duration::from_secs(1)).await;

    let second = a.submit("/multi/", "second").await;
    assert_eq!(a.moderate(second, "approve").await.status(), StatusCode::OK);
    wait_for_count(&a.client, b_address, "/multi/", 2, Duration::from_secs(1)).await;

    assert_eq!(a.delete(first).await.status(), StatusCode::NO_CONTENT);
    wait_for_count(&a.client, b_address, "/multi/", 1, Duration::from_secs(1)).await;
    b_server.abort();
}

#[tokio::test]
async fn a_lost_listener_connection_never_leaves_a_stale_thread_behind() {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let b = second_instance(&a).await;
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));
    settle().await;

    a.publish("/lost/", "first").await;
    wait_for_count(&a.client, b_address, "/lost/", 1, Duration::from_secs(1)).await;

    // Kill every listening connection on this database (B's included), then
    // change the thread at once, while B may still be reconnecting.
    let database = url::Url::parse(a.database_url())
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut admin = sqlx::PgConnection::connect(&postgres_server_url().unwrap())
        .await
        .unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&database)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the listeners were found and terminated");
    let second = a.submit("/lost/", "second").await;
    a.moderate(second, "approve").await;

    wait_for_count(&a.client, b_address, "/lost/", 2, Duration::from_secs(1)).await;
    // And B keeps following changes after reconnecting.
    let third = a.submit("/lost/", "third").await;
    a.moderate(third, "approve").await;
    wait_for_count(&a.client, b_address, "/lost/", 3, Duration::from_secs(1)).await;
    b_server.abort();
}
