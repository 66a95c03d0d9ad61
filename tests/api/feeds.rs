//! The Atom feeds (`/feed/recent.atom`, `/feed/thread.atom?uri=`), read by a
//! real feed parser (`feed-rs`): every field, stable ids, only approved
//! comments and never an email, IP or user agent, the ETag and the same
//! invalidation as the thread read.

use std::time::{Duration, Instant};

use feed_rs::model::{Entry, Feed};
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::*;

const PUBLIC_URL: &str = "https://comments.example.org";
const SITE_URL: &str = "https://blog.example.org";
const SITE_NAME: &str = "Example Blog";
const SECRET_EMAIL: &str = "distinctive.feed.reader@private.example";
const SECRET_AGENT: &str = "FeedProbe/9.9 (distinctive-agent)";

/// An app with a public URL, a blog and its name, as a real deployment has.
async fn spawn_feed_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |config| {
        config.public_url = Some(PUBLIC_URL.into());
        config.site_url = Some(SITE_URL.into());
        config.site_name = Some(SITE_NAME.into());
    })
    .await
}

async fn get(app: &TestApp, path: &str) -> Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

/// The feed at `path`, its ETag and its exact bytes (asserting a 200 Atom answer).
async fn read_feed(app: &TestApp, path: &str) -> (Feed, String, Vec<u8>) {
    let response = get(app, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/atom+xml; charset=utf-8"
    );
    let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
    let bytes = response.bytes().await.unwrap().to_vec();
    let feed = feed_rs::parser::parse(bytes.as_slice()).expect("a valid feed");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    (feed, etag, bytes)
}

fn thread_path(uri: &str) -> String {
    format!("/feed/thread.atom?uri={}", encode(uri))
}

fn entry_ids(feed: &Feed) -> Vec<String> {
    feed.entries.iter().map(|entry| entry.id.clone()).collect()
}

/// The comment id at the end of an entry id.
fn comment_id(entry: &Entry) -> i64 {
    entry.id.rsplit('/').next().unwrap().parse().unwrap()
}

fn nanos(text: &str) -> i128 {
    OffsetDateTime::parse(text, &Rfc3339)
        .unwrap()
        .unix_timestamp_nanos()
}

/// A `feed-rs` date (chrono's, named nowhere here) in Unix nanoseconds.
macro_rules! feed_nanos {
    ($date:expr) => {
        i128::from($date.expect("a date").timestamp_nanos_opt().unwrap())
    };
}

/// Submits with a distinctive email and user agent; returns the id.
async fn submit_private(app: &TestApp, uri: &str, name: &str, body: &str) -> i64 {
    let mut comment = valid_comment();
    merge(
        &mut comment,
        json!({"uri": uri, "name": name, "body": body, "email": SECRET_EMAIL}),
    );
    let response = app
        .client
        .post(app.url("/api/comments"))
        .header("user-agent", SECRET_AGENT)
        .json(&comment)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Approves `id` and returns the comment as the moderator API shows it.
async fn approve(app: &TestApp, id: i64) -> Value {
    let response = app.moderate(id, "approve").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn link<'a>(links: &'a [feed_rs::model::Link], rel: &str) -> &'a feed_rs::model::Link {
    links
        .iter()
        .find(|link| link.rel.as_deref() == Some(rel))
        .unwrap_or_else(|| panic!("a {rel} link in {links:?}"))
}

#[tokio::test]
async fn the_recent_feed_shows_approved_comments_with_every_field_and_nothing_private() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        let first = submit_private(&app, "/posts/a/", "Ada Lovelace", "First *thought*.").await;
        let first = approve(&app, first).await;
        let second = submit_private(&app, "/posts/b/", "Grace Hopper", "Second <b>one</b>.").await;
        let second = approve(&app, second).await;
        // Neither pending, rejected nor spam comments are published.
        let pending = submit_private(&app, "/posts/a/", "Pending Person", "pending text").await;
        for action in ["reject", "spam"] {
            let id = submit_private(&app, "/posts/a/", "Hidden Person", &format!("{action} text")).await;
            assert_eq!(app.moderate(id, action).await.status(), StatusCode::OK);
        }

        let (feed, _, bytes) = read_feed(&app, "/feed/recent.atom").await;
        let text = String::from_utf8(bytes).unwrap();
        for private in [
            SECRET_EMAIL,
            SECRET_AGENT,
            "127.0.0.1",
            "Pending Person",
            "Hidden Person",
        ] {
            assert!(!text.contains(private), "{private} in {text}");
        }
        let _ = pending;

        assert_eq!(feed.id, format!("{PUBLIC_URL}/feed/recent.atom"));
        assert_eq!(
            feed.title.as_ref().unwrap().content,
            format!("Comments on {SITE_NAME}")
        );
        assert_eq!(
            link(&feed.links, "self").href,
            format!("{PUBLIC_URL}/feed/recent.atom")
        );
        assert_eq!(link(&feed.links, "alternate").href, format!("{SITE_URL}/"));
        // Newest first; the feed's `updated` is the newest entry's.
        assert_eq!(feed.entries.len(), 2, "{text}");
        assert_eq!(feed_nanos!(feed.updated), feed_nanos!(feed.entries[0].updated));

        for (entry, comment, uri) in [
            (&feed.entries[0], &second, "/posts/b/"),
            (&feed.entries[1], &first, "/posts/a/"),
        ] {
            let id = comment["id"].as_i64().unwrap();
            let created_at = comment["created_at"].as_str().unwrap();
            let day = &created_at[..10];
            assert_eq!(
                entry.id,
                format!("tag:comments.example.org,{day}:marginalia/comment/{id}")
            );
            let name = comment["name"].as_str().unwrap();
            assert_eq!(entry.title.as_ref().unwrap().content, format!("{name} on {uri}"));
            assert_eq!(entry.authors.len(), 1);
            assert_eq!(entry.authors[0].name.as_deref(), Some(name));
            assert_eq!(entry.authors[0].uri.as_deref(), Some("https://ada.example/"));
            assert_eq!(entry.authors[0].email, None);
            assert_eq!(
                link(&entry.links, "alternate").href,
                format!("{SITE_URL}{uri}#marginalia-comment-{id}")
            );
            let content = entry.content.as_ref().expect("content");
            assert_eq!(content.content_type.to_string(), "text/html");
            // feed-rs trims text; the bytes hold the HTML exactly, escaped.
            let body_html = comment["body_html"].as_str().unwrap();
            assert_eq!(content.body.as_deref(), Some(body_html.trim()));
            let escaped = body_html
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            assert!(
                text.contains(&format!("<content type=\"html\">{escaped}</content>")),
                "{text}"
            );
            assert_eq!(feed_nanos!(entry.published), nanos(created_at));
            assert_eq!(
                feed_nanos!(entry.updated),
                nanos(comment["moderated_at"].as_str().unwrap())
            );
        }
        // The stored, sanitized HTML is what the thread read publishes too.
        let thread = app.thread("/posts/b/").await;
        assert_eq!(
            feed.entries[0].content.as_ref().unwrap().body.as_deref(),
            thread["comments"][0]["body_html"].as_str().map(str::trim)
        );
        assert!(!text.contains("<b>one"), "reader markup is never raw XML: {text}");
    })
    .await;
}

#[tokio::test]
async fn a_thread_feed_shows_only_its_threads_approved_comments() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        let uri = "/posts/ünïcode&more?/";
        let one = app.publish(uri, "one").await;
        let two = app.publish(uri, "two").await;
        app.publish("/posts/other/", "elsewhere").await;
        let pending = submit_private(&app, uri, "Pending Person", "not yet").await;

        let (feed, _, bytes) = read_feed(&app, &thread_path(uri)).await;
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains(SECRET_EMAIL) && !text.contains("Pending Person"),
            "{text}"
        );
        let self_link = format!("{PUBLIC_URL}/feed/thread.atom?uri={}", encode(uri));
        assert_eq!(feed.id, self_link);
        assert_eq!(link(&feed.links, "self").href, self_link);
        assert_eq!(
            feed.title.as_ref().unwrap().content,
            format!("Comments on {uri} ({SITE_NAME})")
        );
        let page = url::Url::parse(&format!("{SITE_URL}{uri}")).unwrap();
        assert_eq!(link(&feed.links, "alternate").href, page.as_str());
        assert_eq!(
            page.as_str(),
            "https://blog.example.org/posts/%C3%BCn%C3%AFcode&more?/"
        );
        let ids: Vec<i64> = feed.entries.iter().map(comment_id).collect();
        assert_eq!(ids, vec![two, one]);
        for entry in &feed.entries {
            let mut expected = page.clone();
            expected.set_fragment(Some(&format!("marginalia-comment-{}", comment_id(entry))));
            assert_eq!(link(&entry.links, "alternate").href, expected.as_str());
        }
        let _ = pending;

        // An unknown thread has a valid, empty feed.
        let (empty, _, _) = read_feed(&app, &thread_path("/nothing/here/")).await;
        assert!(empty.entries.is_empty());
        assert_eq!(
            empty.title.as_ref().unwrap().content,
            format!("Comments on /nothing/here/ ({SITE_NAME})")
        );
    })
    .await;
}

#[tokio::test]
async fn entry_ids_stay_the_same_across_reads_and_a_restart() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        app.publish("/posts/a/", "one").await;
        app.publish("/posts/a/", "two").await;
        let (first, first_etag, first_bytes) = read_feed(&app, "/feed/recent.atom").await;
        let (again, again_etag, _) = read_feed(&app, "/feed/recent.atom").await;
        assert_eq!(entry_ids(&first), entry_ids(&again));
        assert_eq!(first_etag, again_etag);
        let (thread, _, _) = read_feed(&app, &thread_path("/posts/a/")).await;
        assert_eq!(
            entry_ids(&thread),
            entry_ids(&first),
            "one comment, one id, in every feed"
        );

        let app = app.restart().await;
        let (after, after_etag, after_bytes) = read_feed(&app, "/feed/recent.atom").await;
        assert_eq!(entry_ids(&after), entry_ids(&first));
        assert_eq!(after_etag, first_etag, "the same feed, byte for byte");
        assert_eq!(after_bytes, first_bytes);
    })
    .await;
}

#[tokio::test]
async fn the_feeds_hold_the_newest_fifty_comments() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        let mut published = Vec::new();
        for n in 0..55 {
            published.push(app.publish("/posts/busy/", &format!("comment {n}")).await);
        }
        let newest: Vec<i64> = published.iter().rev().take(50).copied().collect();
        for path in ["/feed/recent.atom".to_owned(), thread_path("/posts/busy/")] {
            let (feed, _, _) = read_feed(&app, &path).await;
            let ids: Vec<i64> = feed.entries.iter().map(comment_id).collect();
            assert_eq!(ids, newest, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn if_none_match_gives_304_until_moderation_changes_the_feed() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        let first = app.publish("/posts/a/", "one").await;
        let paths = ["/feed/recent.atom".to_owned(), thread_path("/posts/a/")];

        let etag_of = async |path: &str| read_feed(&app, path).await.1;
        let not_modified = async |path: &str, etag: &str| {
            let response = app
                .client
                .get(app.url(path))
                .header(IF_NONE_MATCH, etag)
                .send()
                .await
                .unwrap();
            let status = response.status();
            if status == StatusCode::NOT_MODIFIED {
                assert_eq!(response.headers()[ETAG], etag);
                assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
                assert!(response.bytes().await.unwrap().is_empty());
            }
            status == StatusCode::NOT_MODIFIED
        };

        for path in &paths {
            let etag = etag_of(path).await;
            assert!(not_modified(path, &etag).await, "{path}");
            assert!(!not_modified(path, "\"something-else\"").await, "{path}");
        }

        // Each moderation shows in the very next read of both feeds.
        let second = app.submit("/posts/a/", "two").await;
        let before: Vec<String> = futures_util::future::join_all(paths.iter().map(|p| etag_of(p))).await;
        assert_eq!(app.moderate(second, "approve").await.status(), StatusCode::OK);
        for (path, etag) in paths.iter().zip(&before) {
            assert!(!not_modified(path, etag).await, "approval unseen in {path}");
            let ids: Vec<i64> = read_feed(&app, path)
                .await
                .0
                .entries
                .iter()
                .map(comment_id)
                .collect();
            assert_eq!(ids, vec![second, first], "{path}");
        }

        let before: Vec<String> = futures_util::future::join_all(paths.iter().map(|p| etag_of(p))).await;
        assert_eq!(app.moderate(second, "reject").await.status(), StatusCode::OK);
        for (path, etag) in paths.iter().zip(&before) {
            assert!(!not_modified(path, etag).await, "rejection unseen in {path}");
            let ids: Vec<i64> = read_feed(&app, path)
                .await
                .0
                .entries
                .iter()
                .map(comment_id)
                .collect();
            assert_eq!(ids, vec![first], "{path}");
        }

        let before: Vec<String> = futures_util::future::join_all(paths.iter().map(|p| etag_of(p))).await;
        assert_eq!(app.delete(first).await.status(), StatusCode::NO_CONTENT);
        for (path, etag) in paths.iter().zip(&before) {
            assert!(!not_modified(path, etag).await, "deletion unseen in {path}");
            assert!(read_feed(&app, path).await.0.entries.is_empty(), "{path}");
        }

        // The recent feed follows every thread; a thread's feed only its own.
        let quiet = thread_path("/posts/a/");
        let (quiet_etag, recent_etag) = (etag_of(&quiet).await, etag_of("/feed/recent.atom").await);
        let elsewhere = app.publish("/posts/elsewhere/", "news").await;
        assert!(not_modified(&quiet, &quiet_etag).await);
        assert!(!not_modified("/feed/recent.atom", &recent_etag).await);
        let (recent, _, _) = read_feed(&app, "/feed/recent.atom").await;
        assert_eq!(
            recent.entries.iter().map(comment_id).collect::<Vec<_>>(),
            vec![elsewhere]
        );
    })
    .await;
}

#[tokio::test]
async fn the_thread_feed_needs_a_valid_uri() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        for query in [
            "",
            "?",
            "?url=/posts/a/",
            "?uri=posts",
            "?uri=%2Fa%20b",
            "?uri=%2Fa%00",
        ] {
            let response = get(&app, &format!("/feed/thread.atom{query}")).await;
            assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        }
        for path in ["/feed/recent.atom", "/feed/thread.atom?uri=/a/"] {
            let response = app.client.post(app.url(path)).send().await.unwrap();
            let allow = response.headers()["allow"].to_str().unwrap().to_owned();
            assert_eq!(allow, "GET, HEAD");
            assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        }
    })
    .await;
}

#[tokio::test]
async fn head_answers_like_get_without_a_body_and_with_the_public_headers() {
    for_each_backend(|backend| async move {
        let app = spawn_feed_app(backend).await;
        app.publish("/posts/a/", "one").await;
        for path in ["/feed/recent.atom".to_owned(), thread_path("/posts/a/")] {
            let get_response = get(&app, &path).await;
            let head_response = app.client.head(app.url(&path)).send().await.unwrap();
            assert_eq!(head_response.status(), StatusCode::OK);
            for name in [
                "content-type",
                "etag",
                "cache-control",
                "x-content-type-options",
                "content-security-policy",
                "referrer-policy",
            ] {
                assert!(get_response.headers().contains_key(name), "{name} on {path}");
                assert_eq!(
                    head_response.headers().get(name),
                    get_response.headers().get(name),
                    "{name}"
                );
            }
            assert_eq!(get_response.headers()["x-content-type-options"], "nosniff");
            assert_eq!(get_response.headers()[CACHE_CONTROL], "no-cache");
            assert!(head_response.bytes().await.unwrap().is_empty());
            assert!(!get_response.bytes().await.unwrap().is_empty());
        }
    })
    .await;
}

/// Polls the recent feed on `address` until it has `count` entries.
async fn wait_for_entries(client: &reqwest::Client, address: std::net::SocketAddr, path: &str, count: usize) {
    let started = Instant::now();
    loop {
        let bytes = client
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let feed = feed_rs::parser::parse(bytes.as_ref()).unwrap();
        if feed.entries.len() == count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "after a second the feed still has {} entries",
            feed.entries.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_moderation_through_one_instance_shows_in_the_feeds_of_the_other() {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let a = spawn_feed_app(Backend::Postgres).await;
    let mut config = a.config.clone();
    config.bind = "127.0.0.1:0".parse().unwrap();
    let b = marginalia::startup::App::build(&config).await.unwrap();
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));
    // The other instance's cache serves only once its listener is up.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let first = a.publish("/multi/", "first").await;
    let thread = thread_path("/multi/");
    for path in ["/feed/recent.atom", thread.as_str()] {
        // Read twice: the second read comes from B's cache.
        wait_for_entries(&a.client, b_address, path, 1).await;
        wait_for_entries(&a.client, b_address, path, 1).await;
    }
    let second = a.publish("/multi/", "second").await;
    for path in ["/feed/recent.atom", thread.as_str()] {
        wait_for_entries(&a.client, b_address, path, 2).await;
    }
    assert_eq!(a.delete(first).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.moderate(second, "reject").await.status(), StatusCode::OK);
    for path in ["/feed/recent.atom", thread.as_str()] {
        wait_for_entries(&a.client, b_address, path, 0).await;
    }
    b_server.abort();
}
