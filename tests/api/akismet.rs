//! Akismet, with feedback, end to end against a local fake that speaks
//! Akismet's documented protocol (`tests/support/akismet_fake.rs`, the only
//! fake the suite has: Akismet is a remote third party): the fields each
//! check sends, what each verdict does to the comment, an Akismet that is
//! slow or down (the comment waits in the queue, nothing is lost, and the
//! submission's answer never waits), the feedback calls when a moderator
//! overrides a verdict, and no call at all without a key.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::akismet_fake::{AkismetCall, AkismetFake, FAKE_KEY};
use crate::helpers::*;
use crate::outbox::{Mail, QUIET, assert_no_more_mail, with_mail};
use crate::smtp_server::SmtpServer;

const SITE_URL: &str = "https://blog.clinic.example";

/// Akismet through `fake`, with the blog at [`SITE_URL`] in German.
fn with_akismet(config: &mut marginalia::config::Config, fake: &AkismetFake) {
    config.akismet_key = Some(SecretString::from(FAKE_KEY));
    config.akismet_url = fake.url();
    config.site_url = Some(SITE_URL.into());
    config.lang = "de".parse().unwrap();
}

/// The admin view of comment `id` (any status).
async fn admin_comment(app: &TestApp, id: i64) -> Value {
    for status in ["pending", "approved", "rejected", "spam"] {
        let page = app.admin_list(&format!("status={status}&limit=100")).await;
        if let Some(found) = page["comments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|comment| comment["id"] == id)
        {
            return found.clone();
        }
    }
    panic!("comment {id} is nowhere in the admin lists");
}

/// Akismet's verdict as stored on comment `id` (`comments.akismet`), read
/// directly: no endpoint shows it yet.
async fn stored_verdict(app: &TestApp, id: i64) -> Option<String> {
    let mut db = RawDatabase::connect(app.database_url()).await;
    let sql = "SELECT akismet FROM comments WHERE id = $1";
    match &mut db {
        RawDatabase::Sqlite(connection) => sqlx::query_scalar(sql).bind(id).fetch_one(connection).await,
        RawDatabase::Postgres(connection) => sqlx::query_scalar(sql).bind(id).fetch_one(connection).await,
    }
    .unwrap()
}

/// Waits (at most 20 s) until Akismet's verdict on `id` is recorded.
async fn wait_for_verdict(app: &TestApp, id: i64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(verdict) = stored_verdict(app, id).await {
            return verdict;
        }
        assert!(Instant::now() < deadline, "no Akismet verdict recorded for {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits `comment` with a browser's headers; returns the id and when the
/// answer arrived.
async fn submit_from_browser(app: &TestApp, comment: Value) -> (i64, Instant) {
    let response = app
        .client
        .post(app.url("/api/comments"))
        .header("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0")
        .header("Referer", "https://blog.clinic.example/posts/hello/")
        .json(&comment)
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    (body["id"].as_i64().unwrap(), answered)
}

fn assert_documented_fields(call: &AkismetCall, comment: &Value, id_kind: &str) {
    assert_eq!(call.field("api_key"), FAKE_KEY);
    // The front page's URL, as `url` writes a bare host: with its `/`.
    assert_eq!(call.field("blog"), format!("{SITE_URL}/"));
    assert_eq!(call.field("user_ip"), "127.0.0.1");
    assert_eq!(
        call.field("user_agent"),
        "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"
    );
    assert_eq!(call.field("referrer"), "https://blog.clinic.example/posts/hello/");
    assert_eq!(
        call.field("permalink"),
        format!("{SITE_URL}{}", comment["uri"].as_str().unwrap())
    );
    assert_eq!(call.field("comment_type"), id_kind);
    assert_eq!(call.field("comment_author"), comment["name"]);
    assert_eq!(call.field("comment_author_email"), comment["email"]);
    assert_eq!(call.field("comment_author_url"), comment["website"]);
    assert_eq!(call.field("comment_content"), comment["body"]);
    assert_eq!(call.field("blog_lang"), "de");
    assert_eq!(call.field("blog_charset"), "UTF-8");
    // The form's honeypot field, and its value: empty (a filled one is
    // spam by our own rule, and never asked about).
    assert_eq!(call.field("honeypot_field_name"), "homepage");
    assert_eq!(call.field("homepage"), "");
    let date = time::OffsetDateTime::parse(
        call.field("comment_date_gmt"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("comment_date_gmt is ISO 8601");
    assert_eq!(date.offset(), time::UtcOffset::UTC);
    assert!(
        (time::OffsetDateTime::now_utc() - date).abs() < time::Duration::minutes(1),
        "{date}"
    );
    assert!(
        call.content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded")),
        "{:?}",
        call.content_type
    );
}

#[tokio::test]
async fn each_new_comment_is_checked_with_every_field_akismet_documents() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| with_akismet(config, &fake)).await;
        assert_eq!(fake.next_call_to("verify-key").await.field("api_key"), FAKE_KEY);

        let comment = json!({
            "uri": "/posts/hello/",
            "name": "Ada Lovelace",
            "email": "ada@example.org",
            "website": "https://ada.example/",
            "body": "A *thoughtful* comment.",
        });
        let (id, _) = submit_from_browser(&app, comment.clone()).await;
        let call = fake.next_call_to("comment-check").await;
        assert_documented_fields(&call, &comment, "comment");
        assert_eq!(wait_for_verdict(&app, id).await, "ham");

        // A reply says so.
        app.moderate(id, "approve").await;
        let reply = json!({
            "uri": "/posts/hello/",
            "parent_id": id,
            "name": "Charles Babbage",
            "email": "charles@example.org",
            "website": "https://charles.example/",
            "body": "I agree.",
        });
        let (reply_id, _) = submit_from_browser(&app, reply.clone()).await;
        let call = fake.next_call_to("comment-check").await;
        assert_documented_fields(&call, &reply, "reply");
        assert_eq!(wait_for_verdict(&app, reply_id).await, "ham");

        // The email went to Akismet, and to nobody public.
        let thread = app.thread("/posts/hello/").await.to_string();
        assert!(!thread.contains("ada@example.org"), "{thread}");
    })
    .await;
}

#[tokio::test]
async fn a_spam_verdict_sends_the_comment_to_spam_as_auto_akismet_and_mails_nobody() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, smtp.port(), &["mod@clinic.example"]);
            with_akismet(config, &fake);
        })
        .await;
        fake.set_spam(true);
        let spam = app.submit("/posts/hello/", "Cheap pills, click here").await;
        assert_eq!(
            fake.next_call_to("comment-check").await.field("comment_content"),
            "Cheap pills, click here"
        );
        assert_eq!(wait_for_verdict(&app, spam).await, "spam");
        let comment = admin_comment(&app, spam).await;
        assert_eq!(comment["status"], "spam", "{comment}");
        assert_eq!(comment["moderated_by"], "auto:akismet", "{comment}");
        assert_eq!(comment["reasons"], json!(["akismet"]), "{comment}");
        // Moderators are not asked to look at what Akismet called spam.
        assert_no_more_mail(&mut smtp, "a comment Akismet called spam").await;

        // A comment Akismet passes is mailed about, after its check.
        fake.set_spam(false);
        let ham = app.submit("/posts/hello/", "A kind word.").await;
        let mail = Mail::parse(
            &tokio::time::timeout(Duration::from_secs(30), smtp.next_mail())
                .await
                .unwrap(),
        );
        assert!(mail.text.contains("A kind word."), "{}", mail.text);
        assert_eq!(
            stored_verdict(&app, ham).await.as_deref(),
            Some("ham"),
            "checked before the mail"
        );
        assert_eq!(admin_comment(&app, ham).await["status"], "pending");
    })
    .await;
}

#[tokio::test]
async fn a_ham_verdict_leaves_the_comment_for_the_moderators() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| with_akismet(config, &fake)).await;
        let id = app.submit("/posts/hello/", "Lovely post.").await;
        fake.next_call_to("comment-check").await;
        assert_eq!(wait_for_verdict(&app, id).await, "ham");
        let comment = admin_comment(&app, id).await;
        assert_eq!(comment["status"], "pending");
        assert_eq!(comment["moderated_by"], Value::Null);
        assert_eq!(comment["reasons"], json!([]), "{comment}");
    })
    .await;
}

#[tokio::test]
async fn akismet_down_leaves_the_comment_pending_and_loses_nothing() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        fake.set_status(Some(StatusCode::INTERNAL_SERVER_ERROR));
        let app = spawn_app_with(backend, |config| with_akismet(config, &fake)).await;
        let ids = [
            app.submit("/posts/hello/", "first while down").await,
            app.submit("/posts/hello/", "second while down").await,
        ];
        for id in ids {
            assert_eq!(wait_for_verdict(&app, id).await, "unavailable");
            let comment = admin_comment(&app, id).await;
            assert_eq!(comment["status"], "pending", "{comment}");
            assert_eq!(comment["moderated_by"], Value::Null);
            assert_eq!(comment["reasons"], json!(["akismet_unavailable"]), "{comment}");
        }
        // Each check was tried three times before it gave up.
        let mut checks = 0;
        while let Some(call) = fake.next_call_within(Duration::from_millis(200)).await {
            if call.endpoint == "comment-check" {
                assert_eq!(call.answered, StatusCode::INTERNAL_SERVER_ERROR);
                checks += 1;
            }
        }
        assert_eq!(checks, 6);
        assert_eq!(
            app.admin_list("status=pending").await["comments"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    })
    .await;
}

#[tokio::test]
async fn a_slow_akismet_times_out_and_the_comment_stays_pending() {
    for_each_backend(|backend| async move {
        let fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| {
            with_akismet(config, &fake);
            config.akismet_timeout = Duration::from_secs(1);
        })
        .await;
        fake.set_delay(Duration::from_secs(3));
        let started = Instant::now();
        let id = app.submit("/posts/hello/", "Patience.").await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(wait_for_verdict(&app, id).await, "unavailable");
        let comment = admin_comment(&app, id).await;
        assert_eq!(comment["status"], "pending");
        assert_eq!(comment["reasons"], json!(["akismet_unavailable"]), "{comment}");
    })
    .await;
}

#[tokio::test]
async fn the_submission_is_answered_before_akismet_replies() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| with_akismet(config, &fake)).await;
        fake.next_call_to("verify-key").await;
        fake.set_delay(Duration::from_secs(2));
        fake.set_spam(true);
        let sent = Instant::now();
        let (id, answered) = submit_from_browser(&app, valid_comment()).await;
        let took = answered - sent;
        assert!(took < Duration::from_millis(500), "the 202 took {took:?}");
        let call = fake.next_call_to("comment-check").await;
        assert!(
            answered < call.replied_at,
            "the submission was answered {:?} after Akismet replied",
            answered - call.replied_at
        );
        assert!(call.replied_at - call.received_at >= Duration::from_secs(2));
        // And the late verdict still counts.
        assert_eq!(wait_for_verdict(&app, id).await, "spam");
        assert_eq!(admin_comment(&app, id).await["status"], "spam");
    })
    .await;
}

#[tokio::test]
async fn a_moderator_overriding_a_verdict_tells_akismet() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| with_akismet(config, &fake)).await;
        let comment = json!({
            "uri": "/posts/hello/",
            "name": "Ada Lovelace",
            "email": "ada@example.org",
            "website": "https://ada.example/",
            "body": "Not spam at all.",
        });

        // Akismet calls it spam; a moderator approves it: submit-ham.
        fake.set_spam(true);
        let (called_spam, _) = submit_from_browser(&app, comment.clone()).await;
        assert_eq!(wait_for_verdict(&app, called_spam).await, "spam");
        assert_eq!(
            app.moderate(called_spam, "approve").await.status(),
            StatusCode::OK
        );
        let ham = fake.next_call_to("submit-ham").await;
        assert_documented_fields(&ham, &comment, "comment");

        // Akismet passes one; a moderator marks it spam: submit-spam.
        fake.set_spam(false);
        let spammy = json!({"body": "Buy followers now", "email": "bot@spam.example"});
        let mut expected = comment.clone();
        merge(&mut expected, spammy.clone());
        let (passed, _) = submit_from_browser(&app, expected.clone()).await;
        assert_eq!(wait_for_verdict(&app, passed).await, "ham");
        assert_eq!(app.moderate(passed, "spam").await.status(), StatusCode::OK);
        let spam = fake.next_call_to("submit-spam").await;
        assert_documented_fields(&spam, &expected, "comment");

        // Agreeing with Akismet tells it nothing.
        let (agreed, _) = submit_from_browser(&app, valid_comment()).await;
        assert_eq!(wait_for_verdict(&app, agreed).await, "ham");
        assert_eq!(app.moderate(agreed, "approve").await.status(), StatusCode::OK);
        while let Some(call) = fake.next_call_within(QUIET).await {
            assert_eq!(
                call.endpoint, "comment-check",
                "an unexpected {} call",
                call.endpoint
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_comment_a_rule_already_sent_to_spam_is_not_sent_to_akismet() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| with_akismet(config, &fake)).await;
        fake.next_call_to("verify-key").await;
        let mut caught = valid_comment();
        merge(&mut caught, json!({"homepage": "https://bot.example/"}));
        let id = app.submit_with(caught).await;
        let comment = admin_comment(&app, id).await;
        assert_eq!(comment["status"], "spam", "{comment}");
        assert_eq!(comment["reasons"], json!(["honeypot"]), "{comment}");
        assert!(fake.next_call_within(QUIET).await.is_none(), "Akismet was asked");
        assert_eq!(stored_verdict(&app, id).await, None);
    })
    .await;
}

#[tokio::test]
async fn without_a_key_akismet_is_never_called() {
    for_each_backend(|backend| async move {
        let mut fake = AkismetFake::start().await;
        let app = spawn_app_with(backend, |config| {
            config.akismet_key = None;
            config.akismet_url = fake.url();
        })
        .await;
        let id = app.submit("/posts/hello/", "Quiet, please.").await;
        app.moderate(id, "spam").await;
        assert!(fake.next_call_within(QUIET).await.is_none(), "Akismet was called");
        assert_eq!(stored_verdict(&app, id).await, None);
        let mut db = RawDatabase::connect(app.database_url()).await;
        assert_eq!(db.count("SELECT COUNT(*) FROM akismet_checks").await, 0);
        assert_eq!(db.count("SELECT COUNT(*) FROM outbox").await, 0);
    })
    .await;
}

#[tokio::test]
async fn a_key_akismet_refuses_stops_start_up_with_a_clear_message() {
    let fake = AkismetFake::start().await;
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut config = test_config(database.url());
    with_akismet(&mut config, &fake);
    config.akismet_key = Some(SecretString::from("not-the-right-key"));
    let error = match marginalia::startup::App::build(&config).await {
        Ok(_) => panic!("started with a key Akismet refuses"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("MARGINALIA_AKISMET_KEY"), "{error}");
    assert!(error.contains("invalid"), "{error}");
    assert!(
        !error.contains("not-the-right-key"),
        "the key is never repeated: {error}"
    );
}
