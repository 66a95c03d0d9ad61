//! GET /api/comments: only approved comments, in order, paged, with ETags.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_pending_comment_is_not_listed_publicly() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.submit("/p/", "waiting").await;
        let thread = app.thread("/p/").await;
        assert_eq!(thread["comments"], json!([]));
        assert_eq!(thread["total"], 0);
    })
    .await;
}

#[tokio::test]
async fn an_approved_comment_is_published_with_the_public_fields_only() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.publish("/p/", "Hello **there**").await;
        let thread = app.thread("/p/").await;
        assert_eq!(thread["uri"], "/p/");
        assert_eq!(thread["total"], 1);
        assert_eq!(thread["next"], Value::Null);
        let comment = thread["comments"][0].as_object().unwrap();
        let mut keys: Vec<&str> = comment.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["body_html", "created_at", "id", "name", "parent_id", "website"]
        );
        assert_eq!(comment["id"], id);
        assert_eq!(comment["body_html"], "<p>Hello <strong>there</strong></p>\n");
    })
    .await;
}

#[tokio::test]
async fn rejected_and_spam_comments_never_appear() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let rejected = app.submit("/p/", "rude").await;
        let spam = app.submit("/p/", "buy now").await;
        let kept = app.publish("/p/", "kind").await;
        app.moderate(rejected, "reject").await;
        app.moderate(spam, "spam").await;
        assert_eq!(app.thread_ids("/p/").await, [kept]);
        assert_eq!(app.thread("/p/").await["total"], 1);
    })
    .await;
}

#[tokio::test]
async fn an_unknown_uri_is_an_empty_thread_and_a_missing_one_a_bad_request() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let thread = app.thread("/never/commented/").await;
        assert_eq!(
            thread,
            json!({"uri": "/never/commented/", "total": 0, "next": null, "comments": [], "closed": false})
        );
        for query in [
            "",
            "limit=5",
            "uri=no-slash",
            "uri=/p/&limit=0",
            "uri=/p/&limit=x",
            "uri=/p/&after=x",
        ] {
            assert_error(
                app.get_thread(query).await,
                StatusCode::BAD_REQUEST,
                "bad_request",
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_thread_is_oldest_first_and_pages_follow_each_other() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut published = Vec::new();
        for n in 0..5 {
            published.push(app.publish("/paged/", &format!("comment {n}")).await);
            // Other pages and pending comments in between must not disturb paging.
            app.publish("/other/", &format!("elsewhere {n}")).await;
            app.submit("/paged/", &format!("pending {n}")).await;
        }
        let mut seen = Vec::new();
        let mut query = "uri=/paged/&limit=2".to_owned();
        let mut pages = 0;
        loop {
            let response = app.get_thread(&query).await;
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            assert_eq!(page["total"], 5, "total counts the whole thread");
            let ids = ids(&page["comments"]);
            assert!(ids.len() <= 2);
            seen.extend(ids);
            pages += 1;
            match page["next"].as_str() {
                Some(next) => query = format!("uri=/paged/&limit=2&after={next}"),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, published);
        // A page past the end is empty but still tells the total.
        let past_end: Value = app
            .get_thread(&format!("uri=/paged/&after={}", published[4]))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(past_end["comments"], json!([]));
        assert_eq!(past_end["total"], 5);
        assert_eq!(past_end["next"], Value::Null);

        // Without a limit the whole thread comes in one page.
        assert_eq!(app.thread_ids("/paged/").await, published);
        // A huge limit is clamped, not refused, however many digits it has (one beyond
        // u64 was a 400).
        for huge in ["100000", "99999999999999999999999"] {
            let response = app.get_thread(&format!("uri=/paged/&limit={huge}")).await;
            assert_eq!(response.status(), StatusCode::OK, "limit={huge}");
            let page: Value = response.json().await.unwrap();
            assert_eq!(ids(&page["comments"]), published, "limit={huge}");
        }
        let response = app
            .admin(
                reqwest::Method::GET,
                "/api/admin/comments?status=approved&limit=99999999999999999999999",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
}

/// GET /api/comments?uri=/etag/ with `If-None-Match: etag`.
async fn revalidate(app: &TestApp, etag: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/comments?uri=/etag/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_etag_gives_304_until_a_moderation_action_changes_the_thread() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.publish("/etag/", "first").await;
        let response = app.get_thread("uri=/etag/").await;
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

        let cached = revalidate(&app, &etag).await;
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(cached.headers()["etag"], etag.as_str());
        assert!(cached.bytes().await.unwrap().is_empty());

        // A new pending comment changes nothing public: still 304.
        let second = app.submit("/etag/", "second").await;
        let still = revalidate(&app, &etag).await;
        assert_eq!(still.status(), StatusCode::NOT_MODIFIED);

        // Approving it shows in the very next response.
        app.moderate(second, "approve").await;
        let fresh = revalidate(&app, &etag).await;
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_ne!(fresh.headers()["etag"], etag.as_str());
        let thread: Value = fresh.json().await.unwrap();
        assert_eq!(thread["total"], 2);
    })
    .await;
}

#[tokio::test]
async fn a_public_parent_id_always_names_a_published_comment() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let parent = app.publish("/t/", "parent").await;
        let reply = app.submit_with(json!({"uri": "/t/", "parent_id": parent})).await;
        app.moderate(reply, "approve").await;
        let thread = app.thread("/t/").await;
        assert_eq!(thread["comments"][1]["parent_id"], parent);

        // Unpublishing the parent makes the reply top-level publicly…
        app.moderate(parent, "reject").await;
        let thread = app.thread("/t/").await;
        assert_eq!(ids(&thread["comments"]), [reply]);
        assert_eq!(thread["comments"][0]["parent_id"], Value::Null);
        // …while moderators still see what it replied to.
        let approved = app.admin_list("status=approved&uri=/t/").await;
        assert_eq!(approved["comments"][0]["parent_id"], parent);
    })
    .await;
}

#[tokio::test]
async fn counts_report_approved_comments_per_uri() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.publish("/a/", "one").await;
        app.publish("/a/", "two").await;
        app.submit("/a/", "pending").await;
        let rejected = app.submit("/b/", "rejected").await;
        app.moderate(rejected, "reject").await;

        let response = app
            .client
            .get(app.url("/api/counts?uri=/a/&uri=/b/&uri=/c/&uri=/a/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let counts: Value = response.json().await.unwrap();
        assert_eq!(counts, json!({"/a/": 2, "/b/": 0, "/c/": 0}));
    })
    .await;
}

#[tokio::test]
async fn counts_need_between_one_and_a_hundred_uris() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let get = |query: String| {
            let request = app.client.get(app.url(&format!("/api/counts{query}")));
            async move { request.send().await.unwrap() }
        };
        assert_error(get(String::new()).await, StatusCode::BAD_REQUEST, "bad_request").await;
        assert_error(
            get("?uri=nope".into()).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;

        let hundred: Vec<String> = (0..100).map(|n| format!("uri=/p{n}/")).collect();
        let response = get(format!("?{}", hundred.join("&"))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.json::<Value>().await.unwrap().as_object().unwrap().len(),
            100
        );

        let too_many: Vec<String> = (0..101).map(|n| format!("uri=/p{n}/")).collect();
        assert_error(
            get(format!("?{}", too_many.join("&"))).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    })
    .await;
}
