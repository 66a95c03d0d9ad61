//! The retention job: IP addresses and user agents cleared after
//! `MARGINALIA_KEEP_IP_DAYS`, spam and rejected comments deleted
//! `MARGINALIA_PURGE_DAYS` after their moderation, `0` keeping them. Rows are
//! back-dated in the database (the service never does that itself), then the
//! instance restarts: the job runs at start-up, and `/metrics` says when it
//! has finished.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::*;

const RUNS: &str = "marginalia_retention_runs_total";
const IP_CLEARED: &str = r#"marginalia_retention_rows_total{action="ip_cleared"}"#;
const PURGED: &str = r#"marginalia_retention_rows_total{action="purged"}"#;

/// Waits (10 s at most) for the job's first run on this instance.
async fn wait_for_a_run(app: &TestApp) {
    let started = Instant::now();
    while metric(app, RUNS).await < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the retention job never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn comment(app: &TestApp, id: i64) -> Option<Value> {
    let response = app
        .admin(Method::GET, &format!("/api/admin/comments/{id}"))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::OK => Some(response.json().await.unwrap()),
        StatusCode::NOT_FOUND => None,
        other => panic!("comment {id}: {other}"),
    }
}

/// The comments the tests look at, by what they are.
struct Comments {
    old_approved: i64,
    new_pending: i64,
    old_spam: i64,
    old_rejected: i64,
    /// Written long ago, marked as spam just now.
    recently_spam: i64,
    /// Approved, then replied to, then rejected long ago.
    old_rejected_parent: i64,
    reply: i64,
}

/// Submits the comments (with a user agent), moderates them and moves the
/// clocks of the old ones 40 days back.
async fn seed(app: &TestApp) -> Comments {
    let submit = |body: &'static str| async move {
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("user-agent", "RetentionTest/1.0")
            .json(
                &json!({"uri": "/retention/", "name": "Reader", "email": "reader@example.org", "body": body}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    };
    let old_approved = submit("old: approved").await;
    let new_pending = submit("new: pending").await;
    let old_spam = submit("old: spam").await;
    let old_rejected = submit("old: rejected").await;
    let recently_spam = submit("old, recently spam").await;
    let old_rejected_parent = submit("old: parent, rejected").await;
    assert_eq!(
        app.moderate(old_rejected_parent, "approve").await.status(),
        StatusCode::OK
    );
    let reply = app
        .submit_with(json!({"uri": "/retention/", "body": "new: reply", "parent_id": old_rejected_parent}))
        .await;
    for (id, action) in [
        (old_approved, "approve"),
        (old_spam, "spam"),
        (old_rejected, "reject"),
        (recently_spam, "spam"),
        (old_rejected_parent, "reject"),
        (reply, "approve"),
    ] {
        assert_eq!(app.moderate(id, action).await.status(), StatusCode::OK);
    }
    let long_ago = OffsetDateTime::now_utc() - time::Duration::days(40);
    let mut raw = RawDatabase::connect(app.database_url()).await;
    assert_eq!(
        raw.execute_at(
            "UPDATE comments SET created_at = $1 WHERE body LIKE 'old%'",
            long_ago
        )
        .await,
        5
    );
    assert_eq!(
        raw.execute_at(
            "UPDATE comments SET moderated_at = $1 WHERE body LIKE 'old:%'",
            long_ago
        )
        .await,
        4
    );
    Comments {
        old_approved,
        new_pending,
        old_spam,
        old_rejected,
        recently_spam,
        old_rejected_parent,
        reply,
    }
}

#[tokio::test]
async fn old_ip_addresses_are_cleared_and_old_spam_and_rejected_comments_purged() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let seeded = seed(&app).await;
        let app = app.restart().await;
        wait_for_a_run(&app).await;

        let old = comment(&app, seeded.old_approved)
            .await
            .expect("approved comments are kept");
        assert!(old["ip"].is_null() && old["user_agent"].is_null(), "{old}");
        assert_eq!(old["name"], "Reader", "nothing else changes");
        let new = comment(&app, seeded.new_pending).await.unwrap();
        assert_eq!(new["ip"], "127.0.0.1");
        assert_eq!(new["user_agent"], "RetentionTest/1.0");
        for purged in [seeded.old_spam, seeded.old_rejected, seeded.old_rejected_parent] {
            assert!(comment(&app, purged).await.is_none(), "{purged} was kept");
        }
        let recent = comment(&app, seeded.recently_spam)
            .await
            .expect("moderated just now: kept");
        assert!(recent["ip"].is_null(), "written long ago: its IP goes");
        // The reply to a purged comment stays, published, top-level.
        let reply = comment(&app, seeded.reply).await.unwrap();
        assert!(reply["parent_id"].is_null());
        assert_eq!(
            app.thread_ids("/retention/").await,
            [seeded.old_approved, seeded.reply]
        );

        // Five old comments had an IP; three old ones were purged.
        assert_eq!(metric(&app, IP_CLEARED).await, 5.0);
        assert_eq!(metric(&app, PURGED).await, 3.0);
    })
    .await;
}

#[tokio::test]
async fn zero_days_keeps_ip_addresses_or_spam() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.keep_ip_days = 0;
            config.purge_days = 30;
        })
        .await;
        let seeded = seed(&app).await;
        let mut app = app.restart().await;
        wait_for_a_run(&app).await;
        let old = comment(&app, seeded.old_approved).await.unwrap();
        assert_eq!(old["ip"], "127.0.0.1", "KEEP_IP_DAYS=0 keeps them");
        assert_eq!(old["user_agent"], "RetentionTest/1.0");
        assert!(
            comment(&app, seeded.old_spam).await.is_none(),
            "purging is still on"
        );
        assert_eq!(metric(&app, IP_CLEARED).await, 0.0);

        // Another comment rejected long ago, for the run with purging off.
        let late = app.submit("/retention/", "late: rejected").await;
        assert_eq!(app.moderate(late, "reject").await.status(), StatusCode::OK);
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(40);
        let mut raw = RawDatabase::connect(app.database_url()).await;
        let sql = "UPDATE comments SET created_at = $1, moderated_at = $1 WHERE body = 'late: rejected'";
        assert_eq!(raw.execute_at(sql, long_ago).await, 1);

        app.config.keep_ip_days = 30;
        app.config.purge_days = 0;
        let app = app.restart().await;
        wait_for_a_run(&app).await;
        let old = comment(&app, seeded.old_approved).await.unwrap();
        assert!(old["ip"].is_null(), "{old}");
        assert!(
            comment(&app, late).await.is_some(),
            "PURGE_DAYS=0 keeps rejected comments"
        );
        assert_eq!(metric(&app, PURGED).await, 0.0);
    })
    .await;
}
