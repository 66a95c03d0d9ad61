//! The submission limit shared by every instance on one PostgreSQL database:
//! over HTTP with two instances, and the GCRA statement itself (refill,
//! refusals that change nothing, concurrency, pruning, a database too slow
//! to answer). PostgreSQL only: a SQLite file has one instance, whose
//! in-process limit `rate_limit.rs` covers; these say they skip without
//! `MARGINALIA_TEST_DATABASE_URL`.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use marginalia::store::{PostgresStore, SharedVerdict, Store};
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

use crate::helpers::*;
use crate::instances::second_instance;

/// One cell a minute: nothing refills while a test runs unless it back-dates.
const MINUTE: Duration = Duration::from_secs(60);
const WITHIN: Duration = Duration::from_secs(5);

fn needs_postgres() -> bool {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return false;
    }
    true
}

/// A migrated PostgreSQL store on a database of the test's own.
async fn postgres_store(database: &TestDatabase) -> PostgresStore {
    let store = Store::connect(database.url()).await.unwrap();
    store.migrate().await.unwrap();
    match store {
        Store::Postgres(postgres) => postgres,
        Store::Sqlite(_) => unreachable!("a PostgreSQL database"),
    }
}

/// A direct connection to the test's database, to read and move a cell.
async fn raw(database: &TestDatabase) -> sqlx::PgConnection {
    match RawDatabase::connect(database.url()).await {
        RawDatabase::Postgres(connection) => connection,
        RawDatabase::Sqlite(_) => unreachable!("a PostgreSQL database"),
    }
}

async fn tat(connection: &mut sqlx::PgConnection, key: &str) -> Option<OffsetDateTime> {
    sqlx::query_scalar("SELECT tat FROM rate_limit_cells WHERE key = $1")
        .bind(key)
        .fetch_optional(connection)
        .await
        .unwrap()
}

/// Moves a cell's TAT `seconds` into the past, as waiting would.
async fn back_date(connection: &mut sqlx::PgConnection, key: &str, seconds: f64) {
    let moved =
        sqlx::query("UPDATE rate_limit_cells SET tat = tat - make_interval(secs => $2) WHERE key = $1")
            .bind(key)
            .bind(seconds)
            .execute(connection)
            .await
            .unwrap();
    assert_eq!(moved.rows_affected(), 1);
}

/// Takes cells of `key` until one is refused; returns how many were allowed
/// and the refusal's wait.
async fn take_until_refused(store: &PostgresStore, key: &str, burst: u32) -> (u32, Duration) {
    let mut allowed = 0;
    loop {
        match store
            .take_rate_limit_cell(key, MINUTE, burst, WITHIN)
            .await
            .unwrap()
        {
            SharedVerdict::Allowed => allowed += 1,
            SharedVerdict::Refused { retry_after } => return (allowed, retry_after),
        }
        assert!(allowed <= burst, "more than the burst was allowed");
    }
}

#[tokio::test]
async fn one_client_gets_the_burst_in_total_across_two_instances() {
    if !needs_postgres() {
        return;
    }
    let a = spawn_app_with(Backend::Postgres, |config| {
        config.rate_limit_per_minute = NonZeroU32::new(1).unwrap();
        config.rate_limit_burst = NonZeroU32::new(3).unwrap();
    })
    .await;
    let b = second_instance(&a).await;
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));

    // Round robin, as a balancer would: A, B, A, B, … from one client
    // (both see the same loopback peer). Per-instance limits would accept 6.
    let mut statuses = Vec::new();
    for attempt in 0..8 {
        let url = if attempt % 2 == 0 {
            a.url("/api/comments")
        } else {
            format!("http://{b_address}/api/comments")
        };
        let mut comment = valid_comment();
        merge(&mut comment, json!({"body": format!("Attempt {attempt}")}));
        let response = a.client.post(url).json(&comment).send().await.unwrap();
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(
                (1..=60).contains(&retry_after),
                "attempt {attempt}: {retry_after}"
            );
            assert_error(response, status, "rate_limited").await;
        }
        statuses.push(status);
    }
    let mut expected = vec![StatusCode::ACCEPTED; 3];
    expected.extend([StatusCode::TOO_MANY_REQUESTS; 5]);
    assert_eq!(statuses, expected);
    assert_eq!(a.admin_list("").await["comments"].as_array().unwrap().len(), 3);
    b_server.abort();
}

#[tokio::test]
async fn the_shared_cell_refills_one_interval_at_a_time_and_refusals_change_nothing() {
    if !needs_postgres() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let store = postgres_store(&database).await;
    let mut connection = raw(&database).await;
    let key = "192.0.2.1";

    let (allowed, retry_after) = take_until_refused(&store, key, 3).await;
    assert_eq!(allowed, 3, "a fresh client gets the burst");
    // The next cell is free one interval after the first was taken.
    assert!(
        retry_after > Duration::from_secs(55) && retry_after <= MINUTE,
        "{retry_after:?}"
    );

    // Refusals do not move the TAT: a client hammering away does not push
    // its own allowance further out.
    let before = tat(&mut connection, key).await.unwrap();
    for _ in 0..5 {
        assert!(matches!(
            store.take_rate_limit_cell(key, MINUTE, 3, WITHIN).await.unwrap(),
            SharedVerdict::Refused { .. }
        ));
    }
    assert_eq!(tat(&mut connection, key).await.unwrap(), before);

    // One interval later: exactly one more.
    back_date(&mut connection, key, 60.0).await;
    assert_eq!(take_until_refused(&store, key, 3).await.0, 1);
    // Half an interval: nothing yet, and the wait says about half a minute.
    back_date(&mut connection, key, 30.0).await;
    let (allowed, retry_after) = take_until_refused(&store, key, 3).await;
    assert_eq!(allowed, 0);
    assert!(
        retry_after > Duration::from_secs(25) && retry_after <= Duration::from_secs(30),
        "{retry_after:?}"
    );
    // Idle for a day: the burst again, not a day's worth.
    back_date(&mut connection, key, 86_400.0).await;
    assert_eq!(take_until_refused(&store, key, 3).await.0, 3);
    // Other clients were never touched.
    assert_eq!(take_until_refused(&store, "2001:db8::", 3).await.0, 3);
}

#[tokio::test]
async fn concurrent_takes_from_two_instances_never_exceed_the_burst() {
    if !needs_postgres() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    // Two pools, as two instances have.
    let first = postgres_store(&database).await;
    let second = postgres_store(&database).await;
    let mut takes = Vec::new();
    for index in 0..40 {
        let store = if index % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        takes.push(tokio::spawn(async move {
            store
                .take_rate_limit_cell("198.51.100.7", MINUTE, 5, WITHIN)
                .await
                .unwrap()
        }));
    }
    let mut allowed = 0;
    for take in takes {
        if take.await.unwrap() == SharedVerdict::Allowed {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
}

#[tokio::test]
async fn pruning_deletes_only_cells_whose_time_has_passed() {
    if !needs_postgres() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let store = postgres_store(&database).await;
    let mut connection = raw(&database).await;
    for key in ["192.0.2.1", "192.0.2.2"] {
        store.take_rate_limit_cell(key, MINUTE, 3, WITHIN).await.unwrap();
    }
    // One cell refilled a while ago, the other is still a minute ahead.
    back_date(&mut connection, "192.0.2.1", 120.0).await;
    assert_eq!(store.prune_rate_limit_cells().await.unwrap(), 1);
    assert!(tat(&mut connection, "192.0.2.1").await.is_none());
    assert!(tat(&mut connection, "192.0.2.2").await.is_some());
    // A pruned client starts afresh, as if it had never been seen.
    assert_eq!(take_until_refused(&store, "192.0.2.1", 3).await.0, 3);
}

#[tokio::test]
async fn a_shared_limit_that_cannot_answer_refuses_with_503_and_stores_nothing() {
    if !needs_postgres() {
        return;
    }
    let app = spawn_app(Backend::Postgres).await;
    let mut locker = match RawDatabase::connect(app.database_url()).await {
        RawDatabase::Postgres(connection) => connection,
        RawDatabase::Sqlite(_) => unreachable!("a PostgreSQL database"),
    };
    // A transaction holding the table: the limiter's statement waits on it,
    // as it would on a database too busy to answer.
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE rate_limit_cells IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();

    let started = Instant::now();
    let response = app.post_json(&valid_comment()).await;
    let took = started.elapsed();
    assert_eq!(response.headers()["retry-after"], "5");
    assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "refused after {took:?}"
    );
    assert_eq!(app.admin_list("").await["comments"].as_array().unwrap().len(), 0);

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    // Once the database answers again, so does the limiter.
    app.submit("/posts/hello/", "After the lock").await;
}
