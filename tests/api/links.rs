//! One-click links from mail, end to end over HTTP: `/moderate/{token}`,
//! `/subscribe/{token}`, `/unsubscribe/{token}`.
//!
//! The tests sign their own tokens with the key the service keeps in the
//! database (read through `Store::connect` + `link_secret`), as the mail
//! sender does. Subscriptions are created by the outbox dispatcher when a
//! submission's event is handled; until that lands, the tests write the
//! `subscriptions` rows themselves with plain SQL against the test database.

use marginalia::domain::Email;
use marginalia::notify::links::{Claims, LinkSecret, ModerationAction, Purpose, UnsubscribeScope, sign};
use marginalia::store::Store;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::helpers::*;

const MODERATOR: &str = "maya.moderator@clinic.example";
const READER: &str = "rita.reader@example.org";

/// The service's store and link key, opened beside the running app.
struct Signer {
    store: Store,
    secret: LinkSecret,
}

impl Signer {
    async fn open(app: &TestApp) -> Self {
        let store = Store::connect(app.database_url()).await.unwrap();
        let secret = store.link_secret().await.unwrap();
        Self { store, secret }
    }

    /// A token for `purpose` on `subject`, sent to `recipient`, valid a week.
    fn token(&self, purpose: Purpose, subject: i64, recipient: &str) -> String {
        self.token_at(
            purpose,
            subject,
            recipient,
            OffsetDateTime::now_utc(),
            Duration::days(7),
        )
    }

    fn token_at(
        &self,
        purpose: Purpose,
        subject: i64,
        recipient: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> String {
        let claims = Claims::new(purpose, subject, Email::parse(recipient).unwrap(), now, ttl);
        sign(&self.secret, &claims)
    }

    fn moderate(&self, action: ModerationAction, comment: i64) -> String {
        self.token(Purpose::Moderate(action), comment, MODERATOR)
    }
}

impl TestApp {
    async fn get_link(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The POST of a link page's button (a form with no fields).
    async fn post_link(&self, path: &str) -> Response {
        self.client
            .post(self.url(path))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap()
    }
}

/// Asserts an HTML page with `status` and returns its text.
async fn assert_page(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    response.text().await.unwrap()
}

/// Asserts that a comment is still untouched by any moderator.
async fn assert_still_pending(app: &TestApp, id: i64) {
    let comment = app.admin_comment(id).await;
    assert_eq!(comment["status"], "pending", "{comment}");
    assert_eq!(comment["moderated_by"], Value::Null, "{comment}");
}

#[tokio::test]
async fn the_get_of_a_moderation_link_shows_the_comment_and_changes_nothing() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app
            .submit_with(json!({
                "uri": "/posts/ot/",
                "name": "<b>Maya</b> & co",
                "email": "maya.reader@example.org",
                "body": "First line <script>alert(1)</script>\nsecond line\n\nNext *paragraph*.",
            }))
            .await;
        let signer = Signer::open(&app).await;
        let path = format!("/moderate/{}", signer.moderate(ModerationAction::Approve, id));

        for _ in 0..2 {
            let page = assert_page(app.get_link(&path).await, StatusCode::OK).await;
            assert!(page.contains("Approve this comment?"), "{page}");
            assert!(
                page.contains("&lt;b&gt;Maya&lt;/b&gt; &amp; co"),
                "the name is escaped: {page}"
            );
            assert!(!page.contains("<b>Maya"), "{page}");
            assert!(page.contains("First line &lt;script&gt;alert(1)&lt;/script&gt;<br>second line"));
            assert!(page.contains("Next *paragraph*."), "the text as written");
            assert!(
                page.contains("maya.reader@example.org"),
                "moderators see the email"
            );
            assert!(page.contains("/posts/ot/"));
            assert!(page.contains(r#"<form method="post">"#), "{page}");
            assert!(
                page.contains(r#"<button type="submit">Approve</button>"#),
                "{page}"
            );
        }
        let head = app.client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.text().await.unwrap(), "");

        assert_still_pending(&app, id).await;
        assert_eq!(app.thread_ids("/posts/ot/").await, Vec::<i64>::new());
    })
    .await;
}

#[tokio::test]
async fn the_post_of_a_moderation_link_acts_once_as_its_recipient() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/posts/once/", "Approve me by mail.").await;
        let signer = Signer::open(&app).await;
        let path = format!("/moderate/{}", signer.moderate(ModerationAction::Approve, id));

        let page = assert_page(app.post_link(&path).await, StatusCode::OK).await;
        assert!(page.contains("<h1>Approved</h1>"), "{page}");
        assert!(page.contains("/admin"), "a way to the queue: {page}");
        let approved = app.admin_comment(id).await;
        assert_eq!(approved["status"], "approved");
        assert_eq!(approved["moderated_by"], format!("email:{MODERATOR}"));
        assert_eq!(
            app.thread_ids("/posts/once/").await,
            vec![id],
            "published at once"
        );

        // Used: refused, and nothing changes, not even after a moderator
        // rejects the comment meanwhile.
        assert_eq!(app.moderate(id, "reject").await.status(), StatusCode::OK);
        let rejected = app.admin_comment(id).await;
        for response in [app.post_link(&path).await, app.get_link(&path).await] {
            let page = assert_page(response, StatusCode::GONE).await;
            assert!(page.contains("already been used"), "{page}");
        }
        assert_eq!(app.admin_comment(id).await, rejected);
    })
    .await;
}

#[tokio::test]
async fn reject_and_spam_links_set_their_status_and_count_like_any_moderation() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let signer = Signer::open(&app).await;
        for (action, status, title) in [
            (ModerationAction::Reject, "rejected", "Rejected"),
            (ModerationAction::Spam, "spam", "Marked as spam"),
        ] {
            let id = app
                .submit("/posts/actions/", &format!("Some text to mark {status}."))
                .await;
            let path = format!("/moderate/{}", signer.moderate(action, id));
            let page = assert_page(app.post_link(&path).await, StatusCode::OK).await;
            assert!(page.contains(&format!("<h1>{title}</h1>")), "{page}");
            let comment = app.admin_comment(id).await;
            assert_eq!(comment["status"], status);
            assert_eq!(comment["moderated_by"], format!("email:{MODERATOR}"));
        }
        let metrics = app.get_link("/metrics").await.text().await.unwrap();
        for status in ["rejected", "spam"] {
            assert!(
                metrics.contains(&format!(
                    "marginalia_comments_moderated_total{{status=\"{status}\"}} 1"
                )),
                "{metrics}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn expired_tampered_and_made_up_links_are_refused_and_change_nothing() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/posts/refused/", "Leave me alone.").await;
        let signer = Signer::open(&app).await;

        let expired = signer.token_at(
            Purpose::Moderate(ModerationAction::Approve),
            id,
            MODERATOR,
            OffsetDateTime::now_utc() - Duration::days(8),
            Duration::days(7),
        );
        let genuine = signer.moderate(ModerationAction::Approve, id);
        // One character in the middle changed: still base64url, signature broken.
        let mut tampered: Vec<char> = genuine.chars().collect();
        let middle = tampered.len() / 2;
        tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let forged = sign(
            &LinkSecret::generate(),
            &Claims::moderate(
                ModerationAction::Approve,
                id,
                Email::parse(MODERATOR).unwrap(),
                OffsetDateTime::now_utc(),
                Duration::days(7),
            ),
        );

        for (token, status, says) in [
            (expired.as_str(), StatusCode::GONE, "expired"),
            (tampered.as_str(), StatusCode::BAD_REQUEST, "not valid"),
            (forged.as_str(), StatusCode::BAD_REQUEST, "not valid"),
            ("not-a-token", StatusCode::BAD_REQUEST, "not valid"),
            (&"A".repeat(3000), StatusCode::BAD_REQUEST, "not valid"),
        ] {
            let path = format!("/moderate/{token}");
            for response in [app.get_link(&path).await, app.post_link(&path).await] {
                let page = assert_page(response, status).await;
                assert!(page.contains(says), "{status}: {page}");
                assert!(page.contains("Nothing was changed."), "{page}");
            }
        }
        assert_still_pending(&app, id).await;

        // The genuine link still works afterwards: the refusals used nothing up.
        assert_page(
            app.post_link(&format!("/moderate/{genuine}")).await,
            StatusCode::OK,
        )
        .await;
    })
    .await;
}

/// A genuine link used at another link's address is refused with 400, like
/// a link that is not valid: its purpose is signed, so an unsubscribe or
/// confirmation link never moderates, and a moderation link never confirms.
#[tokio::test]
async fn a_link_at_the_address_of_another_purpose_is_a_bad_request() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/posts/purpose/", "Not by that link.").await;
        let signer = Signer::open(&app).await;
        insert_subscription(&app, id, "/posts/purpose/", MODERATOR).await;

        for purpose in [
            Purpose::ConfirmSubscription,
            Purpose::Unsubscribe(UnsubscribeScope::Thread),
            Purpose::Unsubscribe(UnsubscribeScope::Everything),
        ] {
            let path = format!("/moderate/{}", signer.token(purpose, id, MODERATOR));
            for response in [app.get_link(&path).await, app.post_link(&path).await] {
                let page = assert_page(response, StatusCode::BAD_REQUEST).await;
                assert!(page.contains("not for this page"), "{page}");
            }
        }
        assert_still_pending(&app, id).await;

        let moderation = signer.moderate(ModerationAction::Approve, id);
        for prefix in ["/subscribe/", "/unsubscribe/"] {
            let path = format!("{prefix}{moderation}");
            assert_page(app.post_link(&path).await, StatusCode::BAD_REQUEST).await;
        }
        let subscription = signer.store.subscription(id).await.unwrap().unwrap();
        assert_eq!((subscription.confirmed_at, subscription.ended_at), (None, None));
        // Nothing used the moderation link up.
        assert_page(
            app.post_link(&format!("/moderate/{moderation}")).await,
            StatusCode::OK,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_link_for_a_deleted_comment_is_not_found() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/posts/gone/", "Soon deleted.").await;
        let signer = Signer::open(&app).await;
        let path = format!("/moderate/{}", signer.moderate(ModerationAction::Approve, id));
        assert_eq!(app.delete(id).await.status(), StatusCode::NO_CONTENT);

        for response in [app.get_link(&path).await, app.post_link(&path).await] {
            let page = assert_page(response, StatusCode::NOT_FOUND).await;
            assert!(page.contains("no longer exists"), "{page}");
        }
        assert_eq!(app.admin_list("status=approved").await["comments"], json!([]));
        assert_eq!(app.thread_ids("/posts/gone/").await, Vec::<i64>::new());
    })
    .await;
}

/// The key is read at every request, so a rotation by another process (the
/// CLI) applies at once.
#[tokio::test]
async fn rotating_the_secret_kills_every_earlier_link() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/posts/rotate/", "Rotate first.").await;
        let signer = Signer::open(&app).await;
        let old = format!("/moderate/{}", signer.moderate(ModerationAction::Approve, id));
        assert_page(app.get_link(&old).await, StatusCode::OK).await;

        let rotated = Signer {
            secret: signer.store.rotate_link_secret().await.unwrap(),
            store: signer.store,
        };
        for response in [app.get_link(&old).await, app.post_link(&old).await] {
            let page = assert_page(response, StatusCode::BAD_REQUEST).await;
            assert!(page.contains("not valid"), "{page}");
        }
        assert_still_pending(&app, id).await;

        let new = format!("/moderate/{}", rotated.moderate(ModerationAction::Approve, id));
        assert_page(app.post_link(&new).await, StatusCode::OK).await;
        assert_eq!(app.admin_comment(id).await["status"], "approved");
    })
    .await;
}

#[tokio::test]
async fn link_pages_carry_the_strict_headers_of_the_moderation_page_and_keep_tokens_out_of_metrics() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/posts/headers/", "Headers.").await;
        let signer = Signer::open(&app).await;
        let token = signer.moderate(ModerationAction::Spam, id);
        let unsubscribe = signer.token(Purpose::Unsubscribe(UnsubscribeScope::Everything), id, READER);
        let responses = [
            app.get_link(&format!("/moderate/{token}")).await,
            app.get_link("/moderate/not-a-token").await,
            app.get_link(&format!("/unsubscribe/{unsubscribe}")).await,
            app.post_link(&format!("/subscribe/{token}")).await,
        ];
        for response in responses {
            let headers = response.headers().clone();
            let csp = headers["content-security-policy"].to_str().unwrap();
            for directive in [
                "default-src 'self'",
                "script-src 'self'",
                "frame-ancestors 'none'",
                "form-action 'self'",
                "base-uri 'none'",
            ] {
                assert!(csp.contains(directive), "{csp}");
            }
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert_eq!(headers["x-frame-options"], "DENY");
            assert_eq!(headers["referrer-policy"], "no-referrer");
            assert_eq!(headers["cache-control"], "no-store");
            assert_eq!(headers["x-content-type-options"], "nosniff");
            let page = response.text().await.unwrap();
            assert!(
                page.starts_with("<!DOCTYPE html><html lang=\"en\" dir=\"ltr\">"),
                "{page}"
            );
            assert_eq!(page.matches("<h1>").count(), 1, "{page}");
            assert!(page.contains("<title>"), "{page}");
            assert!(!page.contains("<script") && !page.contains("style="), "{page}");
        }

        let metrics = app.get_link("/metrics").await.text().await.unwrap();
        assert!(metrics.contains("route=\"/moderate/{token}\""), "{metrics}");
        assert!(metrics.contains("route=\"/unsubscribe/{token}\""), "{metrics}");
        assert!(!metrics.contains(&token) && !metrics.contains("not-a-token"));
    })
    .await;
}

#[tokio::test]
async fn other_methods_on_link_paths_are_refused_with_allow() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/moderate/x", "/subscribe/x", "/unsubscribe/x"] {
        for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
            let response = app.client.request(method, app.url(path)).send().await.unwrap();
            assert_eq!(response.headers()["allow"], "GET, HEAD, POST", "{path}");
            assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        }
    }
}

/// Writes a subscription row as the outbox dispatcher will (its
/// `complete_events`): tests may use SQL directly, the service may not.
async fn insert_subscription(app: &TestApp, comment_id: i64, uri: &str, email: &str) {
    const INSERT: &str =
        "INSERT INTO subscriptions (comment_id, uri, email, created_at) VALUES ($1, $2, $3, $4)";
    let now = OffsetDateTime::now_utc();
    let url = app.database_url();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(INSERT)
            .bind(comment_id)
            .bind(uri)
            .bind(email)
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(INSERT)
            .bind(comment_id)
            .bind(uri)
            .bind(email)
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// Submits a comment by `email` on `uri` and subscribes it; returns its id.
async fn subscribed(app: &TestApp, uri: &str, email: &str) -> i64 {
    let id = app
        .submit_with(json!({"uri": uri, "email": email, "notify": true}))
        .await;
    insert_subscription(app, id, uri, email).await;
    id
}

#[tokio::test]
async fn a_confirmation_link_confirms_once_with_the_other_pending_requests_of_the_address() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let signer = Signer::open(&app).await;
        let first = subscribed(&app, "/posts/a/", READER).await;
        let second = subscribed(&app, "/posts/b/", READER).await;
        let someone_else = subscribed(&app, "/posts/a/", "sam@example.org").await;
        let path = format!(
            "/subscribe/{}",
            signer.token(Purpose::ConfirmSubscription, first, READER)
        );

        let page = assert_page(app.get_link(&path).await, StatusCode::OK).await;
        assert!(page.contains(READER) && page.contains("/posts/a/"), "{page}");
        assert!(page.contains(r#"<form method="post">"#), "{page}");
        let confirmed_at = |id| {
            let store = &signer.store;
            async move { store.subscription(id).await.unwrap().unwrap().confirmed_at }
        };
        assert_eq!(confirmed_at(first).await, None, "the GET changes nothing");

        let page = assert_page(app.post_link(&path).await, StatusCode::OK).await;
        assert!(page.contains("Replies confirmed"), "{page}");
        let first_at = confirmed_at(first).await.expect("confirmed");
        assert!(
            confirmed_at(second).await.is_some(),
            "the address's other request too"
        );
        assert_eq!(confirmed_at(someone_else).await, None, "not another address's");

        for response in [app.post_link(&path).await, app.get_link(&path).await] {
            let page = assert_page(response, StatusCode::GONE).await;
            assert!(page.contains("already been used"), "{page}");
        }
        assert_eq!(
            confirmed_at(first).await,
            Some(first_at),
            "unchanged by the reuse"
        );
    })
    .await;
}

#[tokio::test]
async fn a_confirmation_link_for_an_unknown_ended_or_other_subscription_is_not_found() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let signer = Signer::open(&app).await;
        let id = subscribed(&app, "/posts/c/", READER).await;
        let ended = subscribed(&app, "/posts/d/", READER).await;
        assert_eq!(
            signer
                .store
                .end_thread_subscriptions(ended, READER)
                .await
                .unwrap(),
            Some(1)
        );
        let unsubscribed_at = signer.store.subscription(ended).await.unwrap().unwrap().ended_at;

        for (subject, recipient) in [(id, "sam@example.org"), (id + 1000, READER), (ended, READER)] {
            let path = format!(
                "/subscribe/{}",
                signer.token(Purpose::ConfirmSubscription, subject, recipient)
            );
            for response in [app.get_link(&path).await, app.post_link(&path).await] {
                let page = assert_page(response, StatusCode::NOT_FOUND).await;
                assert!(page.contains("no longer exists"), "{page}");
            }
        }
        let subscription = signer.store.subscription(id).await.unwrap().unwrap();
        assert_eq!(subscription.confirmed_at, None);
        let ended = signer.store.subscription(ended).await.unwrap().unwrap();
        assert_eq!((ended.confirmed_at, ended.ended_at), (None, unsubscribed_at));
    })
    .await;
}

#[tokio::test]
async fn one_click_unsubscribe_is_repeatable_and_ends_the_thread_or_everything() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let signer = Signer::open(&app).await;
        let here = subscribed(&app, "/posts/t/", READER).await;
        let here_too = subscribed(&app, "/posts/t/", READER).await;
        let elsewhere = subscribed(&app, "/posts/u/", READER).await;
        let other_reader = subscribed(&app, "/posts/t/", "sam@example.org").await;
        let ended_at = |id| {
            let store = &signer.store;
            async move { store.subscription(id).await.unwrap().unwrap().ended_at }
        };
        let thread = format!(
            "/unsubscribe/{}",
            signer.token(Purpose::Unsubscribe(UnsubscribeScope::Thread), here, READER)
        );

        let page = assert_page(app.get_link(&thread).await, StatusCode::OK).await;
        assert!(page.contains("/posts/t/") && page.contains(READER), "{page}");
        assert!(
            page.contains(r#"<button type="submit">Unsubscribe</button>"#),
            "{page}"
        );
        assert_eq!(ended_at(here).await, None, "the GET changes nothing");

        // RFC 8058: a mail client POSTs this body, and may do so twice.
        let one_click = || {
            app.client
                .post(app.url(&thread))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
        };
        let page = assert_page(one_click().await.unwrap(), StatusCode::OK).await;
        assert!(page.contains("Unsubscribed"), "{page}");
        let first_end = ended_at(here).await.expect("ended");
        assert!(
            ended_at(here_too).await.is_some(),
            "every subscription of the thread"
        );
        assert_eq!(ended_at(elsewhere).await, None, "not other threads");
        assert_eq!(ended_at(other_reader).await, None, "not other readers");
        assert_page(one_click().await.unwrap(), StatusCode::OK).await;
        assert_page(app.post_link(&thread).await, StatusCode::OK).await;
        assert_eq!(
            ended_at(here).await,
            Some(first_end),
            "repeating keeps the first end"
        );

        // Everything: no body at all, twice.
        let everything = format!(
            "/unsubscribe/{}",
            signer.token(Purpose::Unsubscribe(UnsubscribeScope::Everything), here, READER)
        );
        for _ in 0..2 {
            let response = app.client.post(app.url(&everything)).send().await.unwrap();
            assert_page(response, StatusCode::OK).await;
        }
        assert!(ended_at(elsewhere).await.is_some());
        assert_eq!(ended_at(other_reader).await, None);
        assert_eq!(ended_at(here).await, Some(first_end));

        // A thread link naming a subscription that is not the recipient's.
        let misdirected = format!(
            "/unsubscribe/{}",
            signer.token(
                Purpose::Unsubscribe(UnsubscribeScope::Thread),
                other_reader,
                READER
            )
        );
        assert_page(app.post_link(&misdirected).await, StatusCode::NOT_FOUND).await;
        assert_eq!(ended_at(other_reader).await, None);
    })
    .await;
}
