//! Closing, opening and renaming threads: the moderator calls, what the
//! public read and submissions see right after, the age rule
//! (`MARGINALIA_CLOSE_AFTER_DAYS`), and, on PostgreSQL, a second instance
//! seeing a close and a rename at once.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// POST /api/admin/threads/{close|open}?uri=… with the test token.
async fn decide(app: &TestApp, verb: &str, uri: &str) -> reqwest::Response {
    app.admin(
        Method::POST,
        &format!("/api/admin/threads/{verb}?uri={}", encode(uri)),
    )
    .send()
    .await
    .unwrap()
}

/// POST /api/admin/threads/rename with `body`.
async fn rename(app: &TestApp, body: &Value) -> reqwest::Response {
    app.admin(Method::POST, "/api/admin/threads/rename")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Renames `from` to `to` and returns how many comments moved.
async fn moved(app: &TestApp, from: &str, to: &str) -> u64 {
    let response = rename(app, &json!({"from": from, "to": to})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["moved"].as_u64().expect("a count")
}

/// A valid submission on `uri`, unchecked.
async fn try_submit(app: &TestApp, uri: &str) -> reqwest::Response {
    let mut comment = valid_comment();
    merge(&mut comment, json!({"uri": uri, "body": "Late to the party."}));
    app.post_json(&comment).await
}

/// Every comment of `uri`, in any status (the moderation lists).
async fn stored_on(app: &TestApp, uri: &str) -> usize {
    let mut count = 0;
    for status in ["pending", "approved", "rejected", "spam"] {
        let list = app
            .admin_list(&format!("status={status}&uri={}", encode(uri)))
            .await;
        count += list["comments"].as_array().unwrap().len();
    }
    count
}

/// GET /api/counts for `uris`.
async fn counts(app: &TestApp, uris: &[&str]) -> Value {
    let query: Vec<String> = uris.iter().map(|uri| format!("uri={}", encode(uri))).collect();
    let response = app
        .client
        .get(app.url(&format!("/api/counts?{}", query.join("&"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_closed_thread_refuses_submissions_stores_nothing_and_reopens() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let published = app.publish("/post/", "Before the close.").await;
        assert_eq!(app.thread("/post/").await["closed"], false);

        let response = decide(&app, "close", "/post/").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"uri": "/post/", "closed": true}));
        let thread = app.thread("/post/").await;
        assert_eq!(thread["closed"], true, "the very next read says so");
        assert_eq!(
            ids(&thread["comments"]),
            vec![published],
            "its comments stay shown"
        );

        let refused = assert_error(try_submit(&app, "/post/").await, StatusCode::FORBIDDEN, "closed").await;
        assert_eq!(refused["message"], "Comments are closed.");
        let german = app
            .client
            .post(app.url("/api/comments"))
            .header("accept-language", "de")
            .json(&json!({"uri": "/post/", "name": "Ada", "email": "ada@example.org", "body": "Hallo"}))
            .send()
            .await
            .unwrap();
        let german = assert_error(german, StatusCode::FORBIDDEN, "closed").await;
        assert_eq!(german["message"], "Kommentare sind geschlossen.");
        // The form post of a browser without JavaScript gets a page saying so.
        let page = app
            .client
            .post(app.url("/api/comments"))
            .header("accept", "text/html")
            .form(&[
                ("uri", "/post/"),
                ("name", "Ada"),
                ("email", "ada@example.org"),
                ("body", "Hello"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::FORBIDDEN);
        assert!(page.text().await.unwrap().contains("Comments are closed."));
        assert_eq!(stored_on(&app, "/post/").await, 1, "nothing was stored");

        // Closing again is harmless.
        assert_eq!(decide(&app, "close", "/post/").await.status(), StatusCode::OK);

        let response = decide(&app, "open", "/post/").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"uri": "/post/", "closed": false}));
        assert_eq!(app.thread("/post/").await["closed"], false);
        assert_eq!(try_submit(&app, "/post/").await.status(), StatusCode::ACCEPTED);
        assert_eq!(stored_on(&app, "/post/").await, 2);
    })
    .await;
}

#[tokio::test]
async fn a_thread_without_comments_can_be_closed_first() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        assert_eq!(
            decide(&app, "close", "/drafts/next/").await.status(),
            StatusCode::OK
        );
        let thread = app.thread("/drafts/next/").await;
        assert_eq!(thread["closed"], true);
        assert_eq!(thread["total"], 0);
        assert_error(
            try_submit(&app, "/drafts/next/").await,
            StatusCode::FORBIDDEN,
            "closed",
        )
        .await;
        assert_eq!(stored_on(&app, "/drafts/next/").await, 0);
        // Other threads are not affected.
        assert_eq!(try_submit(&app, "/drafts/").await.status(), StatusCode::ACCEPTED);
    })
    .await;
}

#[tokio::test]
async fn thread_calls_need_a_moderator_and_a_valid_uri() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for path in [
            "/api/admin/threads/close?uri=/a/",
            "/api/admin/threads/open?uri=/a/",
            "/api/admin/threads/rename",
        ] {
            let response = app
                .client
                .post(app.url(path))
                .json(&json!({"from": "/a/", "to": "/b/"}))
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
        assert_error(
            app.admin(Method::POST, "/api/admin/threads/close")
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
        for bad in ["posts/", "/with space/", ""] {
            assert_error(
                decide(&app, "close", bad).await,
                StatusCode::BAD_REQUEST,
                "bad_request",
            )
            .await;
        }
        let get = app
            .admin(Method::GET, "/api/admin/threads/close?uri=/a/")
            .send()
            .await
            .unwrap();
        assert_error(get, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        assert_eq!(app.thread("/a/").await["closed"], false, "nothing was closed");
    })
    .await;
}

#[tokio::test]
async fn threads_close_the_configured_days_after_their_first_comment_unless_opened() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| config.close_after_days = 30).await;
        let old = app.publish("/old/", "Long ago.").await;
        app.publish("/recent/", "Last week.").await;
        let mut database = RawDatabase::connect(app.database_url()).await;
        let now = time::OffsetDateTime::now_utc();
        let back_dated = database
            .execute_at(
                "UPDATE comments SET created_at = $1 WHERE uri = '/old/'",
                now - time::Duration::days(31),
            )
            .await;
        assert_eq!(back_dated, 1);
        database
            .execute_at(
                "UPDATE comments SET created_at = $1 WHERE uri = '/recent/'",
                now - time::Duration::days(7),
            )
            .await;

        let thread = app.thread("/old/").await;
        assert_eq!(thread["closed"], true, "{thread}");
        assert_eq!(ids(&thread["comments"]), vec![old]);
        assert_error(try_submit(&app, "/old/").await, StatusCode::FORBIDDEN, "closed").await;
        assert_eq!(stored_on(&app, "/old/").await, 1);
        assert_eq!(app.thread("/recent/").await["closed"], false);
        assert_eq!(try_submit(&app, "/recent/").await.status(), StatusCode::ACCEPTED);
        // A new thread's first comment starts its clock.
        assert_eq!(try_submit(&app, "/new/").await.status(), StatusCode::ACCEPTED);
        assert_eq!(app.thread("/new/").await["closed"], false);

        // A moderator's decision wins over the rule.
        assert_eq!(decide(&app, "open", "/old/").await.status(), StatusCode::OK);
        assert_eq!(app.thread("/old/").await["closed"], false);
        assert_eq!(try_submit(&app, "/old/").await.status(), StatusCode::ACCEPTED);
    })
    .await;
}

#[tokio::test]
async fn without_the_age_rule_old_threads_stay_open() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.publish("/ancient/", "Years ago.").await;
        let mut database = RawDatabase::connect(app.database_url()).await;
        database
            .execute_at(
                "UPDATE comments SET created_at = $1 WHERE uri = '/ancient/'",
                time::OffsetDateTime::now_utc() - time::Duration::days(3650),
            )
            .await;
        assert_eq!(app.thread("/ancient/").await["closed"], false);
        assert_eq!(try_submit(&app, "/ancient/").await.status(), StatusCode::ACCEPTED);
    })
    .await;
}

#[tokio::test]
async fn a_rename_moves_every_comment_and_leaves_the_old_uri_empty() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let first = app.publish("/2019/hello/", "First.").await;
        let reply = app
            .submit_with(json!({"uri": "/2019/hello/", "body": "A reply.", "parent_id": first}))
            .await;
        assert_eq!(app.moderate(reply, "approve").await.status(), StatusCode::OK);
        app.submit("/2019/hello/", "Still pending.").await;
        // Both threads are read (and cached) before the rename.
        assert_eq!(app.thread("/2019/hello/").await["total"], 2);
        assert_eq!(app.thread("/hello/").await["total"], 0);

        assert_eq!(moved(&app, "/2019/hello/", "/hello/").await, 3);
        let old = app.thread("/2019/hello/").await;
        assert_eq!(old["total"], 0, "{old}");
        assert_eq!(stored_on(&app, "/2019/hello/").await, 0);
        let new = app.thread("/hello/").await;
        assert_eq!(ids(&new["comments"]), vec![first, reply]);
        assert_eq!(
            new["comments"][1]["parent_id"], first,
            "replies keep their parent"
        );
        assert_eq!(stored_on(&app, "/hello/").await, 3, "the pending one moved too");
        assert_eq!(
            counts(&app, &["/2019/hello/", "/hello/"]).await,
            json!({"/2019/hello/": 0, "/hello/": 2})
        );

        // Repeating it moves nothing and is no error.
        assert_eq!(moved(&app, "/2019/hello/", "/hello/").await, 0);
        assert_eq!(app.thread("/hello/").await["total"], 2);
    })
    .await;
}

#[tokio::test]
async fn a_merge_into_a_thread_with_comments_keeps_both_sets_in_order() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let a1 = app.publish("/a/", "a1").await;
        let b1 = app.publish("/b/", "b1").await;
        let a2 = app.publish("/a/", "a2").await;
        let b2 = app.publish("/b/", "b2").await;
        assert_eq!(app.thread_ids("/b/").await, vec![b1, b2]);

        assert_eq!(moved(&app, "/a/", "/b/").await, 2);
        assert_eq!(app.thread_ids("/b/").await, vec![a1, b1, a2, b2]);
        assert_eq!(app.thread("/b/").await["total"], 4);
        assert_eq!(counts(&app, &["/a/", "/b/"]).await, json!({"/a/": 0, "/b/": 4}));
        // The merged thread takes replies to comments of either set.
        let reply = app.submit_with(json!({"uri": "/b/", "parent_id": a1})).await;
        assert_eq!(app.moderate(reply, "approve").await.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn a_closed_thread_stays_closed_under_its_new_uri_and_a_destinations_decision_stands() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.publish("/old-link/", "Closed conversation.").await;
        assert_eq!(decide(&app, "close", "/old-link/").await.status(), StatusCode::OK);
        assert_eq!(moved(&app, "/old-link/", "/new-link/").await, 1);
        assert_eq!(app.thread("/new-link/").await["closed"], true);
        assert_error(
            try_submit(&app, "/new-link/").await,
            StatusCode::FORBIDDEN,
            "closed",
        )
        .await;
        assert_eq!(
            app.thread("/old-link/").await["closed"],
            false,
            "the old uri is free again"
        );

        // Merging a closed thread into one a moderator opened: the destination's decision stands.
        assert_eq!(decide(&app, "open", "/kept-open/").await.status(), StatusCode::OK);
        assert_eq!(moved(&app, "/new-link/", "/kept-open/").await, 1);
        assert_eq!(app.thread("/kept-open/").await["closed"], false);
        // A closed thread without comments moves its state too.
        assert_eq!(decide(&app, "close", "/empty/").await.status(), StatusCode::OK);
        assert_eq!(moved(&app, "/empty/", "/empty-renamed/").await, 0);
        assert_eq!(app.thread("/empty-renamed/").await["closed"], true);
    })
    .await;
}

#[tokio::test]
async fn a_rename_names_every_bad_field_and_changes_nothing() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.publish("/stays/", "Here.").await;
        let cases = [
            (json!({"from": "stays", "to": "/a b/"}), vec!["from", "to"]),
            (json!({}), vec!["from", "to"]),
            (json!({"from": "/stays/", "to": 5}), vec!["to"]),
            (json!({"from": "/stays/", "to": "/stays/"}), vec!["to"]),
            (json!({"from": "/stays/", "to": "x".repeat(600)}), vec!["to"]),
        ];
        for (body, fields) in cases {
            let error = assert_error(
                rename(&app, &body).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
            )
            .await;
            let named: Vec<&str> = error["fields"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(named, fields, "{body}");
        }
        let not_json = app
            .admin(Method::POST, "/api/admin/threads/rename")
            .header("content-type", "text/plain")
            .body(r#"{"from": "/stays/", "to": "/gone/"}"#)
            .send()
            .await
            .unwrap();
        assert_error(
            not_json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        let malformed = app
            .admin(Method::POST, "/api/admin/threads/rename")
            .header("content-type", "application/json")
            .body(r#"{"from": "/stays/","#)
            .send()
            .await
            .unwrap();
        assert_error(malformed, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_eq!(app.thread_ids("/stays/").await, vec![id], "nothing moved");
    })
    .await;
}

#[tokio::test]
async fn imported_comments_keep_their_source_ids_when_their_thread_is_renamed() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        crate::import::import(
            app.database_url(),
            "wxr",
            &crate::import::fixture("wordpress.xml"),
            &[],
        );
        let before = crate::import::export(app.database_url());
        let on_hello: Vec<&Value> = before
            .iter()
            .filter(|record| record["uri"] == "/2020/01/hello/")
            .collect();
        assert!(!on_hello.is_empty());
        let moved = moved(&app, "/2020/01/hello/", "/hello/").await;
        assert_eq!(moved, on_hello.len() as u64);
        let after = crate::import::export(app.database_url());
        for record in on_hello {
            let now = after
                .iter()
                .find(|other| other["id"] == record["id"])
                .expect("still there");
            assert_eq!(now["uri"], "/hello/");
            assert_eq!(now["source_id"], record["source_id"]);
            assert_eq!(now["parent_id"], record["parent_id"]);
        }
        // The import closed its closed post, which answers as such.
        assert_eq!(app.thread("/closed-post/").await["closed"], true);
    })
    .await;
}

/// A second instance on the same (PostgreSQL) database as `app`.
async fn second_instance(app: &TestApp) -> marginalia::startup::App {
    let mut config = app.config.clone();
    config.bind = "127.0.0.1:0".parse().unwrap();
    marginalia::startup::App::build(&config).await.unwrap()
}

/// Reads `uri` on `address` until `done` holds for the thread; fails after a second.
async fn wait_until(
    client: &reqwest::Client,
    address: std::net::SocketAddr,
    uri: &str,
    done: impl Fn(&Value) -> bool,
) {
    let started = Instant::now();
    loop {
        let thread: Value = client
            .get(format!("http://{address}/api/comments?uri={}", encode(uri)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&thread) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "after a second the other instance still shows {thread}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_close_and_a_rename_through_one_instance_show_on_the_other_at_once() {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let b = second_instance(&a).await;
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));
    // Its listener connects first (its cache serves only then).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b_submit = |uri: &'static str| {
        let client = a.client.clone();
        async move {
            client
                .post(format!("http://{b_address}/api/comments"))
                .json(&json!({"uri": uri, "name": "Ada", "email": "ada@example.org", "body": "Hi"}))
                .send()
                .await
                .unwrap()
        }
    };

    a.publish("/shared/", "first").await;
    // B reads and submits: the thread and its state are cached there.
    wait_until(&a.client, b_address, "/shared/", |t| {
        t["total"] == 1 && t["closed"] == false
    })
    .await;
    assert_eq!(b_submit("/shared/").await.status(), StatusCode::ACCEPTED);

    assert_eq!(decide(&a, "close", "/shared/").await.status(), StatusCode::OK);
    wait_until(&a.client, b_address, "/shared/", |t| t["closed"] == true).await;
    assert_error(b_submit("/shared/").await, StatusCode::FORBIDDEN, "closed").await;

    wait_until(&a.client, b_address, "/renamed/", |t| t["total"] == 0).await;
    assert_eq!(moved(&a, "/shared/", "/renamed/").await, 2);
    wait_until(&a.client, b_address, "/renamed/", |t| {
        t["total"] == 1 && t["closed"] == true
    })
    .await;
    wait_until(&a.client, b_address, "/shared/", |t| {
        t["total"] == 0 && t["closed"] == false
    })
    .await;
    b_server.abort();
}
