//! Webhooks end to end, to real HTTP receivers started by the tests on
//! loopback ports (tests/support/webhook_receiver.rs): every event, its
//! documented payload, the signature checked with the documented recipe
//! written out here (not the library's `verify`), nothing private in the raw
//! bytes, a retry after the receiver comes back, and the chat shapes.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::*;
use crate::outbox::{SITE_NAME, SITE_URL};
use crate::webhook_receiver::{ReceivedCall, WebhookReceiver};

const SECRET: &str = "whsec-test-9f2c4e6a8b";
/// The service's public address: not a loopback one, so that "127.0.0.1" in
/// a body could only be the commenter's IP.
const PUBLIC_URL: &str = "https://comments.clinic.example";
const EMAIL: &str = "hidden.reader@private-mail.example";
const USER_AGENT: &str = "ProbeBrowser/7.7 (ua-marker-5f3a9)";

fn with_webhooks(config: &mut marginalia::config::Config, urls: Vec<String>, format: &str) {
    config.webhook_urls = urls;
    config.webhook_secret = Some(SecretString::from(SECRET));
    config.webhook_format = format.into();
    config.public_url = Some(PUBLIC_URL.into());
    config.site_name = Some(SITE_NAME.into());
    config.site_url = Some(SITE_URL.into());
}

/// Submits with a distinctive user agent and address; returns the id.
async fn submit(app: &TestApp, overrides: Value) -> i64 {
    // One body per submission unless the test names one: a repeat is a duplicate (409).
    static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut comment = json!({
        "uri": "/hooks/", "name": "Robin", "email": EMAIL,
        "website": "https://robin.example/", "body": format!("A *fine* post ({n}).")
    });
    merge(&mut comment, overrides);
    let response = app
        .client
        .post(app.url("/api/comments"))
        .header(reqwest::header::USER_AGENT, USER_AGENT)
        .json(&comment)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// The documented recipe: `X-Marginalia-Signature: t=T,v1=HEX` where HEX is
/// the lowercase hex HMAC-SHA256, keyed with the secret, of `"{t}.{body}"`.
/// Returns `t`.
fn assert_signed(call: &ReceivedCall) -> i64 {
    let header = call.header("x-marginalia-signature").expect("a signature header");
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = Some(value.to_owned()),
            Some(("v1", value)) => signature = Some(value.to_owned()),
            _ => panic!("unexpected part {part:?} in {header:?}"),
        }
    }
    let (timestamp, signature) = (timestamp.expect("t="), signature.expect("v1="));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&call.body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(signature, expected, "the signature does not verify");
    let timestamp: i64 = timestamp.parse().expect("t is unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - timestamp).abs() <= 60, "t={timestamp} is not now ({now})");
    // The same recipe with another key must not verify.
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"another secret").unwrap();
    wrong.update(format!("{timestamp}.").as_bytes());
    wrong.update(&call.body);
    assert_ne!(hex::encode(wrong.finalize().into_bytes()), signature);
    timestamp
}

/// Nothing private in the raw bytes: no address, no IP, no user agent.
fn assert_nothing_private(call: &ReceivedCall) {
    let raw = String::from_utf8_lossy(&call.body);
    for private in [
        EMAIL,
        "hidden.reader",
        "private-mail.example",
        "127.0.0.1",
        USER_AGENT,
        "ua-marker-5f3a9",
        "ProbeBrowser",
    ] {
        assert!(!raw.contains(private), "{private:?} in a webhook body: {raw}");
    }
    let value = call.json();
    for key in ["email", "ip", "user_agent"] {
        assert!(value["comment"].get(key).is_none(), "{key} in {value}");
    }
}

/// `count` calls, each within the receiver's 30 s safety net.
async fn calls(receiver: &mut WebhookReceiver, count: usize) -> Vec<ReceivedCall> {
    let mut calls = Vec::with_capacity(count);
    for _ in 0..count {
        calls.push(receiver.next_call().await);
    }
    calls
}

async fn assert_no_more_calls(receiver: &mut WebhookReceiver) {
    if let Some(extra) = receiver.next_call_within(crate::outbox::QUIET).await {
        panic!(
            "an unexpected webhook call: {}",
            String::from_utf8_lossy(&extra.body)
        );
    }
}

#[tokio::test]
async fn every_event_reaches_every_receiver_signed_and_without_private_data() {
    for_each_backend(|backend| async move {
        let mut first = WebhookReceiver::start().await;
        let mut second = WebhookReceiver::start().await;
        let urls = vec![first.url("/hooks/one"), second.url("/hooks/two?team=7")];
        let app = spawn_app_with(backend, |config| with_webhooks(config, urls, "json")).await;

        let approved = submit(&app, json!({})).await;
        assert_eq!(app.moderate(approved, "approve").await.status(), StatusCode::OK);
        let reply = submit(&app, json!({"parent_id": approved, "name": "Kit"})).await;
        assert_eq!(app.moderate(reply, "reject").await.status(), StatusCode::OK);
        let spam = submit(&app, json!({"body": "Buy now"})).await;
        assert_eq!(app.moderate(spam, "spam").await.status(), StatusCode::OK);
        // The payload shows the comment as it is when its event is handled
        // (docs/notifications.md): the deletion comes after the reply's
        // events are out, so that they still name their parent.
        let mut early = [Vec::new(), Vec::new()];
        for (receiver, calls_so_far) in [&mut first, &mut second].into_iter().zip(early.iter_mut()) {
            *calls_so_far = calls(receiver, 6).await;
        }
        assert_eq!(app.delete(approved).await.status(), StatusCode::NO_CONTENT);
        let expected: HashSet<(&str, i64, &str)> = [
            ("comment.pending", approved, "pending"),
            ("comment.approved", approved, "approved"),
            ("comment.pending", reply, "pending"),
            ("comment.rejected", reply, "rejected"),
            ("comment.pending", spam, "pending"),
            ("comment.spam", spam, "spam"),
            // The status it had when it was deleted.
            ("comment.deleted", approved, "approved"),
        ]
        .into_iter()
        .collect();

        // Ids are unique per delivery: no two receivers share one either.
        let mut ids = HashSet::new();
        for ((receiver, path), mut received) in
            [(&mut first, "/hooks/one"), (&mut second, "/hooks/two?team=7")]
                .into_iter()
                .zip(early)
        {
            received.extend(calls(receiver, 1).await);
            let mut seen = HashSet::new();
            for call in &received {
                assert_eq!(call.method, http::Method::POST);
                assert_eq!(call.path, path.split('?').next().unwrap());
                assert_eq!(call.answered, StatusCode::OK);
                assert!(
                    call.header("content-type")
                        .is_some_and(|ct| ct.starts_with("application/json")),
                    "{:?}",
                    call.headers
                );
                assert_signed(call);
                assert_nothing_private(call);

                let event = call.json();
                let id = event["id"].as_str().expect("an event id");
                assert!(!id.is_empty() && ids.insert(id.to_owned()), "event id {id} twice");
                let created_at = event["created_at"].as_str().expect("created_at");
                time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
                    .expect("created_at is RFC 3339");
                let comment = &event["comment"];
                let keys: HashSet<&str> = comment.as_object().unwrap().keys().map(String::as_str).collect();
                let documented: HashSet<&str> = [
                    "id",
                    "parent_id",
                    "name",
                    "website",
                    "body_html",
                    "created_at",
                    "uri",
                    "status",
                    "admin_url",
                ]
                .into_iter()
                .collect();
                assert!(keys.is_subset(&documented), "undocumented fields in {comment}");
                for required in [
                    "id",
                    "name",
                    "body_html",
                    "created_at",
                    "uri",
                    "status",
                    "admin_url",
                ] {
                    assert!(keys.contains(required), "{required} missing from {comment}");
                }
                let comment_id = comment["id"].as_i64().unwrap();
                assert_eq!(comment["uri"], "/hooks/");
                assert!(
                    comment["admin_url"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{PUBLIC_URL}/admin")),
                    "{comment}"
                );
                if comment_id == approved {
                    assert_eq!(comment["name"], "Robin");
                    assert_eq!(comment["website"], "https://robin.example/");
                    let body_html = comment["body_html"].as_str().unwrap();
                    assert!(body_html.contains("<em>fine</em>"), "{body_html}");
                }
                if comment_id == reply {
                    assert_eq!(comment["parent_id"], approved);
                }
                let key = (
                    event["event"].as_str().unwrap().to_owned(),
                    comment_id,
                    comment["status"].as_str().unwrap().to_owned(),
                );
                assert!(seen.insert(key.clone()), "{key:?} delivered twice");
            }
            let seen: HashSet<(&str, i64, &str)> = seen
                .iter()
                .map(|(e, id, s)| (e.as_str(), *id, s.as_str()))
                .collect();
            assert_eq!(seen, expected);
        }
        assert_no_more_calls(&mut first).await;
        assert_no_more_calls(&mut second).await;
    })
    .await;
}

/// A receiver that answers 503 gets the same event (same id, same bytes)
/// again at the first retry, which comes after the scheduled 10 s.
#[tokio::test]
async fn a_failed_call_is_retried_with_the_same_event_id() {
    for_each_backend(|backend| async move {
        let mut receiver = WebhookReceiver::start().await;
        let urls = vec![receiver.url("/hook")];
        let app = spawn_app_with(backend, |config| with_webhooks(config, urls, "json")).await;
        receiver.fail_next(1);
        let id = submit(&app, json!({})).await;

        let refused = receiver.next_call().await;
        let refused_at = Instant::now();
        assert_eq!(refused.answered, StatusCode::SERVICE_UNAVAILABLE);
        assert_signed(&refused);
        let again = receiver
            .next_call_within(Duration::from_secs(30))
            .await
            .expect("the event is delivered again within 30 s");
        let waited = refused_at.elapsed();
        eprintln!("webhook retry after a 503: {waited:.1?}");
        assert_eq!(again.answered, StatusCode::OK);
        assert_signed(&again);
        assert!(
            waited >= Duration::from_secs(8),
            "retried after {waited:?}, not on the schedule"
        );
        assert_eq!(again.json()["id"], refused.json()["id"], "the event id changed");
        assert_eq!(again.json()["comment"]["id"], id);
        assert_eq!(again.body, refused.body, "the retry's body differs");
        assert_no_more_calls(&mut receiver).await;

        assert_eq!(
            metric(&app, r#"marginalia_notifications_retried_total{kind="webhook"}"#).await,
            1.0
        );
        assert_eq!(
            metric(&app, r#"marginalia_notifications_sent_total{kind="webhook"}"#).await,
            1.0
        );
        assert_eq!(
            metric(&app, r#"marginalia_notifications_queued{kind="webhook"}"#).await,
            0.0
        );
    })
    .await;
}

/// `slack` sends `{"text": …}` and `discord` `{"content": …,
/// "allowed_mentions": {"parse": []}}`, signed the same way, naming the site,
/// the event, the page and the commenter, and nothing private.
#[tokio::test]
async fn slack_and_discord_get_their_chat_shapes() {
    for_each_backend(|backend| async move {
        let mut found: HashMap<&str, Value> = HashMap::new();
        for format in ["slack", "discord"] {
            let mut receiver = WebhookReceiver::start().await;
            let urls = vec![receiver.url("/chat")];
            let app = spawn_app_with(backend, |config| with_webhooks(config, urls, format)).await;
            submit(
                &app,
                json!({"uri": "/chat/", "name": "Robin", "body": "Lovely @everyone <b>hi</b>"}),
            )
            .await;
            let call = receiver.next_call().await;
            assert_signed(&call);
            assert_nothing_private(&call);
            found.insert(format, call.json());
        }
        let slack = &found["slack"];
        assert_eq!(slack.as_object().unwrap().len(), 1, "{slack}");
        let text = slack["text"].as_str().expect("a text field");
        assert!(
            text.starts_with("[Clinic blog] New comment awaiting moderation on /chat/ from Robin:\n"),
            "{text}"
        );
        assert!(text.contains("Lovely @everyone"), "{text}");
        assert!(
            text.ends_with(&format!("<{PUBLIC_URL}/admin?status=pending|Open the queue>")),
            "{text}"
        );

        let discord = &found["discord"];
        let content = discord["content"].as_str().expect("a content field");
        assert!(
            content.starts_with("[Clinic blog] New comment awaiting moderation on /chat/ from Robin:\n"),
            "{content}"
        );
        assert!(content.contains("Lovely \\@everyone"), "{content}");
        assert_eq!(discord["allowed_mentions"], json!({"parse": []}));
    })
    .await;
}
