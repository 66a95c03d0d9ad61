//! Readers' data rights: `GET /api/admin/people` and `DELETE /api/admin/people`
//! (export, anonymize, delete), and the same through `marginalia people`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::outbox::with_mail;

/// Stored with capitals; looked up without them.
const MAYA: &str = "Maya@Reader.example";
const OTHER: &str = "other@reader.example";
const USER_AGENT: &str = "PeopleTest/1.0 (privacy)";

/// Submits a comment by `email` with a user agent; returns its id.
async fn submit_as(app: &TestApp, email: &str, uri: &str, body: &str, extra: Value) -> i64 {
    let mut comment = valid_comment();
    merge(
        &mut comment,
        json!({"uri": uri, "email": email, "name": "Maya Reader", "body": body}),
    );
    merge(&mut comment, extra);
    let response = app
        .client
        .post(app.url("/api/comments"))
        .header("user-agent", USER_AGENT)
        .json(&comment)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn people(app: &TestApp, method: Method, query: &str) -> reqwest::Response {
    app.admin(method, &format!("/api/admin/people?{query}"))
        .send()
        .await
        .unwrap()
}

/// GET /api/admin/people?email=… as JSON (asserting a 200).
async fn export(app: &TestApp, email: &str) -> Value {
    let response = people(app, Method::GET, &format!("email={}", encode(email))).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// DELETE /api/admin/people?email=…{extra} as JSON (asserting a 200).
async fn erase(app: &TestApp, email: &str, extra: &str) -> Value {
    let response = people(app, Method::DELETE, &format!("email={}{extra}", encode(email))).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn admin_comment(app: &TestApp, id: i64) -> reqwest::Response {
    app.admin(Method::GET, &format!("/api/admin/comments/{id}"))
        .send()
        .await
        .unwrap()
}

/// Waits (10 s at most) until `sql`, a count, is positive.
async fn eventually_positive(raw: &mut RawDatabase, sql: &'static str) {
    let started = Instant::now();
    while raw.count(sql).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never true: {sql}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A loopback port nothing listens on: mail to it stays queued, retried.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const MAYAS_SUBSCRIPTIONS: &str =
    "SELECT COUNT(*) FROM subscriptions WHERE LOWER(email) = 'maya@reader.example'";
const MAYAS_MAIL: &str = "SELECT COUNT(*) FROM outbox WHERE LOWER(recipient) = 'maya@reader.example'";
const UNSENT_MAIL_TO_MAYA: &str = "SELECT COUNT(*) FROM outbox \
     WHERE LOWER(recipient) = 'maya@reader.example' AND sent_at IS NULL AND failed_at IS NULL";

#[tokio::test]
async fn export_shows_every_comment_of_the_address_in_every_status_and_its_subscriptions() {
    for_each_backend(|backend| async move {
        let port = closed_port();
        let app = spawn_app_with(backend, |config| with_mail(config, port, &[])).await;
        let mut ids = Vec::new();
        for (action, body) in [
            (Some("approve"), "approved words"),
            (Some("reject"), "rejected words"),
            (Some("spam"), "spam words"),
            (None, "pending words"),
        ] {
            let id = submit_as(&app, MAYA, "/people/export/", body, json!({"notify": true})).await;
            if let Some(action) = action {
                assert_eq!(app.moderate(id, action).await.status(), StatusCode::OK);
            }
            ids.push(id);
        }
        let other = submit_as(&app, OTHER, "/people/export/", "someone else", json!({})).await;
        // The outbox makes the subscriptions (and queues a confirmation
        // mail, which the closed port keeps from going out).
        let mut raw = RawDatabase::connect(app.database_url()).await;
        eventually_positive(&mut raw, MAYAS_SUBSCRIPTIONS).await;

        let exported = export(&app, "  maya@READER.example ").await;
        assert_eq!(exported["email"], "maya@READER.example");
        let comments = exported["comments"].as_array().unwrap();
        assert_eq!(
            ids_of(comments),
            ids,
            "every status, oldest first, no one else's: {exported}"
        );
        let statuses: Vec<&str> = comments.iter().map(|c| c["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, ["approved", "rejected", "spam", "pending"]);
        for comment in comments {
            assert_eq!(comment["email"], MAYA);
            assert_eq!(comment["ip"], "127.0.0.1");
            assert_eq!(comment["user_agent"], USER_AGENT);
            assert_eq!(comment["name"], "Maya Reader");
            assert_eq!(comment["website"], "https://ada.example/");
            for field in [
                "uri",
                "body",
                "body_html",
                "created_at",
                "moderated_by",
                "parent_id",
            ] {
                assert!(comment.get(field).is_some(), "{field} missing: {comment}");
            }
        }
        assert!(!ids_of(comments).contains(&other));
        let subscriptions = exported["subscriptions"].as_array().unwrap();
        assert!(!subscriptions.is_empty(), "{exported}");
        for subscription in subscriptions {
            assert!(ids.contains(&subscription["comment_id"].as_i64().unwrap()));
            assert_eq!(subscription["email"], MAYA);
            assert_eq!(subscription["uri"], "/people/export/");
            assert!(subscription["confirmed_at"].is_null());
            assert!(subscription["ended_at"].is_null());
        }

        let nobody = export(&app, "nobody@reader.example").await;
        assert_eq!(nobody["comments"], json!([]));
        assert_eq!(nobody["subscriptions"], json!([]));
    })
    .await;
}

fn ids_of(comments: &[Value]) -> Vec<i64> {
    comments.iter().map(|c| c["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn erasing_anonymizes_at_once_and_removes_subscriptions_and_queued_mail() {
    for_each_backend(|backend| async move {
        let port = closed_port();
        let app = spawn_app_with(backend, |config| with_mail(config, port, &[])).await;
        let uri = "/people/erase/";
        let mayas = submit_as(&app, MAYA, uri, "Keep *this* text.", json!({"notify": true})).await;
        assert_eq!(app.moderate(mayas, "approve").await.status(), StatusCode::OK);
        let held = submit_as(&app, MAYA, "/people/elsewhere/", "still pending", json!({})).await;
        let others = submit_as(&app, OTHER, uri, "Not Maya.", json!({})).await;
        assert_eq!(app.moderate(others, "approve").await.status(), StatusCode::OK);
        let mut raw = RawDatabase::connect(app.database_url()).await;
        eventually_positive(&mut raw, MAYAS_SUBSCRIPTIONS).await;
        eventually_positive(&mut raw, UNSENT_MAIL_TO_MAYA).await;
        // Read once, so the thread's page is cached before the erasure.
        let before = app.thread(uri).await;
        assert_eq!(before["comments"][0]["name"], "Maya Reader");
        let counts_before = counts(&app, uri).await;

        assert_eq!(
            erase(&app, "MAYA@reader.example", "").await,
            json!({"anonymized": 2})
        );

        let after = app.thread(uri).await;
        let published = &after["comments"][0];
        assert_eq!(published["id"], mayas);
        assert_eq!(published["name"], "Anonymous", "{after}");
        assert!(published["website"].is_null(), "{after}");
        assert_eq!(
            published["body_html"], before["comments"][0]["body_html"],
            "the text stays"
        );
        assert_eq!(
            after["comments"][1]["name"], "Maya Reader",
            "another reader keeps hers: {after}"
        );
        assert_eq!(
            counts(&app, uri).await,
            counts_before,
            "counts follow (nothing removed)"
        );

        for id in [mayas, held] {
            let comment: Value = admin_comment(&app, id).await.json().await.unwrap();
            assert_eq!(comment["name"], "Anonymous");
            assert_eq!(comment["email"], "");
            assert!(comment["website"].is_null());
            assert!(comment["ip"].is_null());
            assert!(comment["user_agent"].is_null());
            assert_eq!(comment["moderated_by"], "admin", "audited: {comment}");
        }
        assert_eq!(
            admin_comment(&app, held).await.json::<Value>().await.unwrap()["status"],
            "pending"
        );
        let other: Value = admin_comment(&app, others).await.json().await.unwrap();
        assert_eq!(other["email"], OTHER);
        assert_eq!(other["ip"], "127.0.0.1");
        assert_eq!(raw.count(MAYAS_SUBSCRIPTIONS).await, 0);
        assert_eq!(
            raw.count(MAYAS_MAIL).await,
            0,
            "no mail to the address stays queued"
        );

        // Idempotent: the address is nowhere any more.
        assert_eq!(erase(&app, MAYA, "").await, json!({"anonymized": 0}));
        let exported = export(&app, MAYA).await;
        assert_eq!(exported["comments"], json!([]));
        assert_eq!(exported["subscriptions"], json!([]));
        // An empty email names nobody: the anonymized rows stay unreachable.
        assert_eq!(
            people(&app, Method::GET, "email=").await.status(),
            StatusCode::BAD_REQUEST
        );
    })
    .await;
}

async fn counts(app: &TestApp, uri: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/api/counts?uri={}", encode(uri))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn deleting_removes_the_comments_and_their_replies_survive() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let uri = "/people/delete/";
        let mayas = submit_as(&app, MAYA, uri, "My comment.", json!({})).await;
        assert_eq!(app.moderate(mayas, "approve").await.status(), StatusCode::OK);
        let spam = submit_as(&app, MAYA, uri, "My spam.", json!({})).await;
        assert_eq!(app.moderate(spam, "spam").await.status(), StatusCode::OK);
        let reply = submit_as(&app, OTHER, uri, "A reply.", json!({"parent_id": mayas})).await;
        assert_eq!(app.moderate(reply, "approve").await.status(), StatusCode::OK);
        assert_eq!(app.thread_ids(uri).await, [mayas, reply]);
        assert_eq!(counts(&app, uri).await[uri], 2);

        assert_eq!(
            erase(&app, "maya@reader.example", "&comments=delete").await,
            json!({"deleted": 2})
        );

        let thread = app.thread(uri).await;
        assert_eq!(ids(&thread["comments"]), [reply], "{thread}");
        assert!(
            thread["comments"][0]["parent_id"].is_null(),
            "the reply is top-level now"
        );
        assert_eq!(counts(&app, uri).await[uri], 1, "counts follow");
        for id in [mayas, spam] {
            assert_eq!(admin_comment(&app, id).await.status(), StatusCode::NOT_FOUND);
        }
        let other: Value = admin_comment(&app, reply).await.json().await.unwrap();
        assert_eq!(other["email"], OTHER);
        assert_eq!(other["name"], "Maya Reader", "someone else's comment, untouched");

        assert_eq!(
            erase(&app, MAYA, "&comments=delete").await,
            json!({"deleted": 0}),
            "a second erasure finds nothing"
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_or_invalid_email_is_refused_and_nothing_changes() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = submit_as(&app, MAYA, "/people/bad/", "Stays as it is.", json!({})).await;
    for method in [Method::GET, Method::DELETE] {
        assert_error(
            people(&app, method.clone(), "").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        assert_error(
            people(&app, method.clone(), "email=").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        let body = assert_error(
            people(&app, method.clone(), "email=not-an-address").await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(body["fields"]["email"].is_string(), "{body}");
        let unauthenticated = app
            .client
            .request(
                method.clone(),
                app.url("/api/admin/people?email=maya%40reader.example"),
            )
            .send()
            .await
            .unwrap();
        assert_error(unauthenticated, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    assert_error(
        people(&app, Method::DELETE, "email=maya%40reader.example&comments=shred").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    let post = app
        .admin(Method::POST, "/api/admin/people?email=maya%40reader.example")
        .send()
        .await
        .unwrap();
    assert_eq!(post.headers()["allow"], "GET, HEAD, DELETE");
    assert_error(post, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let comment: Value = admin_comment(&app, id).await.json().await.unwrap();
    assert_eq!(comment["email"], MAYA);
    assert_eq!(comment["name"], "Maya Reader");
    assert_eq!(comment["ip"], "127.0.0.1");
}

#[tokio::test]
async fn people_commands_export_and_erase_on_the_database() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let url = app.database_url().to_owned();
        let uri = "/people/cli/";
        let mayas = submit_as(&app, MAYA, uri, "From the command line.", json!({})).await;
        assert_eq!(app.moderate(mayas, "approve").await.status(), StatusCode::OK);
        let spam = submit_as(&app, MAYA, uri, "Spam from Maya.", json!({})).await;
        assert_eq!(app.moderate(spam, "spam").await.status(), StatusCode::OK);
        let others = submit_as(&app, OTHER, uri, "Not Maya.", json!({})).await;
        if backend == Backend::Postgres {
            // Cached now: the erasure must reach this instance by NOTIFY.
            assert_eq!(app.thread(uri).await["comments"][0]["name"], "Maya Reader");
        }

        let exported = run_marginalia(&["people", "export", "maya@reader.EXAMPLE"], Some(&url)).await;
        assert!(
            exported.status.success(),
            "{}",
            String::from_utf8_lossy(&exported.stderr)
        );
        let json: Value = serde_json::from_slice(&exported.stdout).expect("JSON on standard output");
        assert_eq!(
            json,
            export(&app, "maya@reader.EXAMPLE").await,
            "the same as the API"
        );
        assert_eq!(ids_of(json["comments"].as_array().unwrap()), [mayas, spam]);

        let invalid = run_marginalia(&["people", "export", "not-an-address"], Some(&url)).await;
        assert!(!invalid.status.success());
        assert!(String::from_utf8_lossy(&invalid.stderr).contains("EMAIL"));

        let erased = run_marginalia(&["people", "erase", MAYA], Some(&url)).await;
        let stdout = String::from_utf8_lossy(&erased.stdout);
        assert!(
            erased.status.success(),
            "{}",
            String::from_utf8_lossy(&erased.stderr)
        );
        assert!(stdout.contains("Anonymized 2 comment(s)"), "{stdout}");
        let comment: Value = admin_comment(&app, mayas).await.json().await.unwrap();
        assert_eq!(comment["name"], "Anonymous");
        assert_eq!(comment["email"], "");
        assert!(comment["ip"].is_null());
        assert_eq!(comment["moderated_by"], "cli");
        let started = Instant::now();
        while app.thread(uri).await["comments"][0]["name"] != "Anonymous" {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the thread never changed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let again = run_marginalia(&["people", "erase", MAYA], Some(&url)).await;
        assert!(String::from_utf8_lossy(&again.stdout).contains("Anonymized 0 comment(s)"));

        // Deleting: the other reader's comment goes, nobody else's.
        let deleted = run_marginalia(&["people", "erase", OTHER, "--delete-comments"], Some(&url)).await;
        assert!(
            deleted.status.success(),
            "{}",
            String::from_utf8_lossy(&deleted.stderr)
        );
        assert!(String::from_utf8_lossy(&deleted.stdout).contains("Deleted 1 comment(s)"));
        assert_eq!(admin_comment(&app, others).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(admin_comment(&app, mayas).await.status(), StatusCode::OK);
    })
    .await;
}
