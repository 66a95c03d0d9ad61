//! The outbox end to end: submissions reach the moderators (and readers who
//! asked for replies) as real mail through a real SMTP server on a loopback
//! port, parsed with a real MIME parser; an hourly allowance turns a wave into
//! a digest; without mail or webhooks nothing is recorded at all.
//!
//! Faults (SMTP down, two instances) are in `outbox_faults.rs`; webhooks in
//! `webhooks.rs`; the kill -9 case in `tests/resilience/outbox.rs`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use reqwest::StatusCode;
use scraper::{Html, Selector};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::smtp_server::{ReceivedMail, SmtpServer};

pub const SITE_NAME: &str = "Clinic blog";
pub const SITE_URL: &str = "https://blog.clinic.example";
pub const FROM: &str = "Clinic blog <comments@clinic.example>";
pub const MODERATOR: &str = "mod@clinic.example";

/// How long a test watches for a mail that must not come: the dispatcher and
/// the sender look for work every second, so three ticks.
pub const QUIET: Duration = Duration::from_secs(3);

/// Mail through `smtp_port` (plain SMTP on loopback) to `moderators`, with a
/// site name and address, and an hourly allowance no test reaches unless it
/// sets its own.
pub fn with_mail(config: &mut marginalia::config::Config, smtp_port: u16, moderators: &[&str]) {
    config.smtp_url = Some(SecretString::from(format!(
        "smtp://127.0.0.1:{smtp_port}?tls=none"
    )));
    config.mail_from = Some(FROM.into());
    config.notify_emails = moderators.iter().map(|m| (*m).to_owned()).collect();
    config.notify_per_hour = 1000;
    config.site_name = Some(SITE_NAME.into());
    config.site_url = Some(SITE_URL.into());
}

/// A received mail, parsed into what the tests look at.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt_to: Vec<String>,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    /// Seconds since the epoch of the `Date` header.
    pub date: i64,
    pub content_type: String,
    pub text_parts: usize,
    pub html_parts: usize,
    /// The plain-text alternative, with LF line ends.
    pub text: String,
    pub html: String,
    /// The whole message as it went over the wire.
    pub raw: String,
    /// The client end of the SMTP connection it came over.
    pub peer: std::net::SocketAddr,
}

impl Mail {
    pub fn parse(received: &ReceivedMail) -> Mail {
        let message = MessageParser::default()
            .parse(&received.data)
            .expect("a MIME message");
        let content_type = message
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
            .unwrap_or_default();
        Mail {
            rcpt_to: received.rcpt_to.clone(),
            to: message
                .to()
                .and_then(|to| to.first())
                .and_then(|to| to.address())
                .unwrap_or_default()
                .to_owned(),
            subject: message.subject().unwrap_or_default().to_owned(),
            message_id: message.message_id().unwrap_or_default().to_owned(),
            date: message.date().map(|date| date.to_timestamp()).unwrap_or(0),
            content_type,
            text_parts: message.text_body_count(),
            html_parts: message.html_body_count(),
            text: message
                .body_text(0)
                .map(|text| text.replace("\r\n", "\n"))
                .unwrap_or_default(),
            html: message
                .body_html(0)
                .map(|html| html.into_owned())
                .unwrap_or_default(),
            raw: String::from_utf8_lossy(&received.data).into_owned(),
            peer: received.peer,
        }
    }
}

/// The next `count` mails (each within the SMTP server's 30 s safety net).
pub async fn next_mails(smtp: &mut SmtpServer, count: usize) -> Vec<Mail> {
    let mut mails = Vec::with_capacity(count);
    for _ in 0..count {
        mails.push(Mail::parse(&smtp.next_mail().await));
    }
    mails
}

/// Asserts that no further mail arrives for [`QUIET`].
pub async fn assert_no_more_mail(smtp: &mut SmtpServer, after: &str) {
    tokio::time::sleep(QUIET).await;
    if let Some(extra) = smtp.try_next_mail() {
        let extra = Mail::parse(&extra);
        panic!(
            "{after}: an unexpected mail to {:?}: {}",
            extra.rcpt_to, extra.subject
        );
    }
}

/// The links of an HTML part as (text, href), in document order.
pub fn html_links(html: &str) -> Vec<(String, String)> {
    let document = Html::parse_document(html);
    let anchors = Selector::parse("a").unwrap();
    document
        .select(&anchors)
        .map(|a| {
            (
                a.text().collect::<String>().trim().to_owned(),
                a.value().attr("href").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Submits `comment` (merged over the valid default) and returns its id.
async fn submit(app: &TestApp, comment: Value) -> i64 {
    app.submit_with(comment).await
}

#[tokio::test]
async fn a_queued_comment_is_mailed_to_the_moderator() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, smtp.port(), &[MODERATOR])).await;
        let id = app
            .submit_with(json!({"uri": "/occupational-therapy/", "name": "Maya", "body": "Hello there"}))
            .await;
        let mail = tokio::time::timeout(Duration::from_secs(20), smtp.next_mail())
            .await
            .expect("the moderator mail arrives");
        assert_eq!(mail.rcpt_to, vec![MODERATOR.to_owned()]);
        assert_eq!(mail.mail_from, "comments@clinic.example");
        let mail = Mail::parse(&mail);
        assert!(
            mail.subject
                .contains("New comment awaiting moderation on /occupational-therapy/ from Maya"),
            "{}",
            mail.subject
        );
        assert!(mail.text.contains("Hello there"), "{}", mail.text);
        assert!(mail.text.contains("/moderate/"), "{}", mail.text);
        assert!(id > 0);
    })
    .await;
}

/// Everything issue #10 asks of the moderator mail, for a reply (so the
/// parent is shown): both alternatives, the headers, the subject, every field
/// of the comment, the page link and the four buttons.
#[tokio::test]
async fn the_moderator_mail_is_multipart_with_every_field_and_the_buttons() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, smtp.port(), &[MODERATOR])).await;
        let public = app.url("");
        let uri = "/occupational-therapy/";
        let parent = submit(
            &app,
            json!({"uri": uri, "name": "Dr. Ahn", "email": "ahn@clinic.example",
                   "body": "Ask me anything about OT."}),
        )
        .await;
        next_mails(&mut smtp, 1).await;
        assert_eq!(app.moderate(parent, "approve").await.status(), StatusCode::OK);

        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        submit(
            &app,
            json!({"uri": uri, "parent_id": parent, "name": "Maya", "email": "maya@reader.example",
                   "website": "https://maya.example/",
                   "body": "Is this covered by *insurance*?\n\nThanks!"}),
        )
        .await;
        let mail = next_mails(&mut smtp, 1).await.remove(0);

        assert_eq!(mail.rcpt_to, [MODERATOR]);
        assert_eq!(mail.to, MODERATOR);
        assert_eq!(mail.content_type, "multipart/alternative");
        assert_eq!((mail.text_parts, mail.html_parts), (1, 1));
        assert!(
            mail.message_id.ends_with("@clinic.example") && mail.message_id.len() > 20,
            "Message-ID {:?}",
            mail.message_id
        );
        let after = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!(
            (before - 2..=after + 2).contains(&mail.date),
            "Date {} not between {before} and {after}",
            mail.date
        );
        assert_eq!(
            mail.subject,
            "[Clinic blog] New comment awaiting moderation on /occupational-therapy/ from Maya"
        );

        let page = format!("{SITE_URL}{uri}");
        for expected in [
            format!("On {page}"),
            "Name: Maya".into(),
            "Email: maya@reader.example".into(),
            "Website: https://maya.example/".into(),
            "Is this covered by *insurance*?\n\nThanks!".into(),
            "In reply to Dr. Ahn:\n> Ask me anything about OT.".into(),
            format!("Approve: {public}/moderate/"),
            format!("Reject: {public}/moderate/"),
            format!("Spam: {public}/moderate/"),
            format!("Open the queue: {public}/admin"),
        ] {
            assert!(mail.text.contains(&expected), "{expected:?} not in {}", mail.text);
        }

        let links = html_links(&mail.html);
        let texts: Vec<&str> = links.iter().map(|(text, _)| text.as_str()).collect();
        assert_eq!(
            texts,
            [page.as_str(), "Approve", "Reject", "Spam", "Open the queue"]
        );
        assert_eq!(links[0].1, page);
        let actions: HashSet<&str> = links[1..4].iter().map(|(_, href)| href.as_str()).collect();
        assert_eq!(actions.len(), 3, "one link per action: {links:?}");
        for href in &actions {
            assert!(href.starts_with(&format!("{public}/moderate/")), "{href}");
        }
        assert_eq!(links[4].1, format!("{public}/admin"));
        // The same links in both alternatives.
        for (_, href) in &links {
            assert!(mail.text.contains(href.as_str()), "{href} not in the text part");
        }
        let document = Html::parse_document(&mail.html);
        let shown: String = document.root_element().text().collect();
        for expected in [
            "Maya",
            "maya@reader.example",
            "https://maya.example/",
            "Is this covered by *insurance*?",
            "Dr. Ahn",
            "Ask me anything about OT.",
        ] {
            assert!(
                shown.contains(expected),
                "{expected:?} not shown in {}",
                mail.html
            );
        }
        // The approval of the parent mails nobody.
        assert_no_more_mail(&mut smtp, "after the reply's mail").await;
    })
    .await;
}

/// Payloads from tests/xss/payloads.jsonl that a name can hold (at most 80
/// characters, no control characters): some `<script` ones and some with an
/// `onerror=` handler.
fn hostile_payloads() -> Vec<String> {
    let all: Vec<String> = include_str!("../xss/payloads.jsonl")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            value["payload"].as_str().unwrap().to_owned()
        })
        .filter(|payload| payload.trim() == payload)
        .filter(|payload| payload.chars().count() <= 80 && !payload.chars().any(char::is_control))
        .collect();
    let pick = |needle: &str| {
        all.iter()
            .filter(|payload| payload.to_ascii_lowercase().contains(needle))
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut picked = pick("<script");
    picked.extend(pick("onerror="));
    picked.extend(pick("javascript:"));
    assert_eq!(picked.len(), 9, "{picked:?}");
    picked
}

/// Hostile names and bodies reach the moderator as text: the HTML part shows
/// them verbatim and gains no element or attribute from them.
#[tokio::test]
async fn hostile_names_and_bodies_are_escaped_in_the_moderator_mail() {
    let payloads = hostile_payloads();
    let allowed_elements = [
        "html",
        "head",
        "meta",
        "title",
        "body",
        "p",
        "a",
        "table",
        "tbody",
        "tr",
        "th",
        "td",
        "div",
        "blockquote",
        "strong",
        "hr",
    ];
    for_each_backend(|backend| {
        let payloads = payloads.clone();
        async move {
            let mut smtp = SmtpServer::start().await;
            let app = spawn_app_with(backend, |config| with_mail(config, smtp.port(), &[MODERATOR])).await;
            for (i, payload) in payloads.iter().enumerate() {
                // Text around the payload: a body the sanitizer would render
                // to nothing is refused (422), and the case is findable.
                submit(
                    &app,
                    json!({"uri": "/xss/", "name": payload, "body": format!("case {i}: {payload}")}),
                )
                .await;
            }
            let mut by_case: HashMap<usize, Mail> = HashMap::new();
            for mail in next_mails(&mut smtp, payloads.len()).await {
                let case = (0..payloads.len())
                    .find(|i| mail.text.contains(&format!("case {i}: ")))
                    .expect("a mail of one case");
                assert!(by_case.insert(case, mail).is_none(), "case {case} mailed twice");
            }
            let everything = Selector::parse("*").unwrap();
            for (i, payload) in payloads.iter().enumerate() {
                let mail = &by_case[&i];
                assert_eq!(
                    mail.subject,
                    format!("[Clinic blog] New comment awaiting moderation on /xss/ from {payload}")
                );
                assert!(mail.text.contains(&format!("Name: {payload}")), "{}", mail.text);
                assert!(
                    !mail.html.to_ascii_lowercase().contains("<script"),
                    "{payload:?}: {}",
                    mail.html
                );
                let document = Html::parse_document(&mail.html);
                let shown: String = document.root_element().text().collect();
                assert!(shown.contains(payload.as_str()), "{payload:?} not shown as text");
                assert!(
                    shown.contains(&format!("case {i}: {payload}")),
                    "the body of {payload:?} not shown as text"
                );
                for element in document.select(&everything) {
                    let name = element.value().name();
                    assert!(allowed_elements.contains(&name), "<{name}> from {payload:?}");
                    for (attribute, value) in element.value().attrs() {
                        assert!(
                            ["href", "style", "charset", "lang", "dir"].contains(&attribute),
                            "{attribute}= from {payload:?}"
                        );
                        if attribute == "href" {
                            assert!(
                                value.starts_with("https://") || value.starts_with(&app.url("/")),
                                "{value} from {payload:?}"
                            );
                        }
                    }
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn every_moderator_gets_one_mail_per_comment() {
    let moderators = [
        "mod@clinic.example",
        "second@clinic.example",
        "third@other.example",
    ];
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, smtp.port(), &moderators)).await;
        for name in ["Maya", "Sam"] {
            submit(
                &app,
                json!({"uri": "/everyone/", "name": name, "body": format!("{name} says hello.")}),
            )
            .await;
        }
        let mails = next_mails(&mut smtp, 2 * moderators.len()).await;
        let mut seen = HashSet::new();
        let mut approve_links = HashSet::new();
        for mail in &mails {
            assert_eq!(
                mail.rcpt_to.len(),
                1,
                "one recipient per message: {:?}",
                mail.rcpt_to
            );
            assert_eq!(mail.to, mail.rcpt_to[0], "To is the envelope's recipient");
            let name = if mail.subject.ends_with("from Maya") {
                "Maya"
            } else {
                "Sam"
            };
            assert!(
                mail.subject.ends_with(&format!("from {name}")),
                "{}",
                mail.subject
            );
            assert!(
                seen.insert((mail.to.clone(), name)),
                "{} got the mail about {name} twice",
                mail.to
            );
            let approve = html_links(&mail.html)
                .into_iter()
                .find(|(text, _)| text == "Approve")
                .expect("an Approve button")
                .1;
            // A link names its recipient: none is shared.
            assert!(approve_links.insert(approve), "an Approve link sent twice");
        }
        for moderator in moderators {
            for name in ["Maya", "Sam"] {
                assert!(
                    seen.contains(&(moderator.to_owned(), name)),
                    "{moderator} / {name}"
                );
            }
        }
        let ids: HashSet<&str> = mails.iter().map(|mail| mail.message_id.as_str()).collect();
        assert_eq!(ids.len(), mails.len(), "a Message-ID used twice");
        assert_no_more_mail(&mut smtp, "after one mail per moderator and comment").await;
    })
    .await;
}

/// NOTIFY_PER_HOUR=2 and five comments: two single mails, then silence while
/// the other three wait; once the oldest held one is an hour old (its clock
/// moved back in the database), exactly one digest with those three.
#[tokio::test]
async fn beyond_the_hourly_allowance_comments_wait_for_one_digest() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, smtp.port(), &[MODERATOR]);
            config.notify_per_hour = 2;
        })
        .await;
        for i in 1..=5 {
            submit(
                &app,
                json!({"uri": "/wave/", "name": format!("Reader {i}"), "body": format!("wave comment {i}")}),
            )
            .await;
        }
        // The first two, in either order: the outbox sends several at once.
        let mut singles = next_mails(&mut smtp, 2).await;
        singles.sort_by(|a, b| a.subject.cmp(&b.subject));
        for (mail, i) in singles.iter().zip(1..) {
            assert!(
                mail.subject.ends_with(&format!("from Reader {i}")),
                "{}",
                mail.subject
            );
            assert!(mail.text.contains(&format!("wave comment {i}")));
        }
        assert_no_more_mail(&mut smtp, "beyond the allowance, within the hour").await;

        let mut database = RawDatabase::connect(app.database_url()).await;
        assert_eq!(held_for_digest(&mut database, 3).await, 3);
        age_digest_batches(&mut database).await;

        let digest = next_mails(&mut smtp, 1).await.remove(0);
        assert_eq!(digest.rcpt_to, [MODERATOR]);
        assert_eq!(digest.content_type, "multipart/alternative");
        assert_eq!(digest.subject, "[Clinic blog] 3 new comments awaiting moderation");
        for i in 1..=5 {
            let held = i > 2;
            assert_eq!(
                digest.text.contains(&format!("wave comment {i}")),
                held,
                "comment {i} in the digest: {}",
                digest.text
            );
            assert_eq!(digest.text.contains(&format!("Name: Reader {i}")), held);
        }
        let links = html_links(&digest.html);
        let count = |label: &str| links.iter().filter(|(text, _)| text == label).count();
        assert_eq!(
            (
                count("Approve"),
                count("Reject"),
                count("Spam"),
                count("Open the queue")
            ),
            (3, 3, 3, 1)
        );
        assert!(
            !singles
                .iter()
                .any(|single| single.message_id == digest.message_id)
        );
        assert_no_more_mail(&mut smtp, "after the digest").await;
        assert_eq!(database.count("SELECT COUNT(*) FROM digest_batches").await, 0);
    })
    .await;
}

/// How many comments are held for digests, once the dispatcher has held
/// `expected` (it runs every second), or whatever it holds after 15 s.
async fn held_for_digest(database: &mut RawDatabase, expected: i64) -> i64 {
    let sql = match database.backend() {
        Backend::Sqlite => "SELECT COALESCE(SUM(json_array_length(comment_ids)), 0) FROM digest_batches",
        Backend::Postgres => {
            "SELECT COALESCE(SUM(json_array_length(comment_ids::json)), 0)::BIGINT FROM digest_batches"
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let held = database.count(sql).await;
        if held >= expected || tokio::time::Instant::now() > deadline {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Moves every held batch an hour and a minute back, so its digest is due.
async fn age_digest_batches(database: &mut RawDatabase) {
    let an_hour_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(61);
    let aged = database
        .execute_at("UPDATE digest_batches SET created_at = $1", an_hour_ago)
        .await;
    assert!(aged >= 1, "no digest batch to age");
}

/// A spam wave does not make a digest of megabytes: it lists the oldest 50
/// held comments with their buttons, counts all of them in its subject and
/// says the rest are in the queue.
#[tokio::test]
async fn a_digest_lists_the_oldest_fifty_and_counts_the_rest() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, smtp.port(), &[MODERATOR]);
            config.notify_per_hour = 1;
        })
        .await;
        for i in 1..=54 {
            submit(
                &app,
                json!({"uri": "/flood/", "name": format!("Flooder {i}"), "body": format!("flood comment {i}.")}),
            )
            .await;
        }
        let single = next_mails(&mut smtp, 1).await.remove(0);
        assert!(single.text.contains("flood comment 1."), "{}", single.text);
        let mut database = RawDatabase::connect(app.database_url()).await;
        assert_eq!(held_for_digest(&mut database, 53).await, 53);
        age_digest_batches(&mut database).await;

        let digest = next_mails(&mut smtp, 1).await.remove(0);
        assert_eq!(digest.subject, "[Clinic blog] 53 new comments awaiting moderation");
        assert!(
            digest.text.contains("Only the oldest 50 are listed below; the rest are waiting in the queue."),
            "{}",
            digest.text
        );
        for i in 2..=54 {
            assert_eq!(
                digest.text.contains(&format!("flood comment {i}.")),
                i <= 51,
                "comment {i} in the digest"
            );
        }
        let links = html_links(&digest.html);
        let count = |label: &str| links.iter().filter(|(text, _)| text == label).count();
        assert_eq!((count("Approve"), count("Open the queue")), (50, 1));
        assert_no_more_mail(&mut smtp, "after the digest").await;
        assert_eq!(database.count("SELECT COUNT(*) FROM digest_batches").await, 0);
    })
    .await;
}

/// `notify: true` sends the reader one confirmation mail, not another the
/// same day; a reader's mail never carries another reader's address, and the
/// moderator's does carry the commenter's.
#[tokio::test]
async fn asking_for_replies_sends_one_confirmation_a_day_with_no_other_address() {
    let maya = "maya@reader.example";
    let sam = "sam@reader.example";
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, smtp.port(), &[MODERATOR])).await;
        let uri = "/questions/";
        let first = submit(
            &app,
            json!({"uri": uri, "name": "Maya", "email": maya, "body": "Does it hurt?", "notify": true}),
        )
        .await;
        let mut mails = next_mails(&mut smtp, 2).await;
        assert_eq!(app.moderate(first, "approve").await.status(), StatusCode::OK);
        // Sam answers Maya, and asks for replies too.
        submit(
            &app,
            json!({"uri": uri, "parent_id": first, "name": "Sam", "email": sam,
                   "body": "Not at all.", "notify": true}),
        )
        .await;
        mails.extend(next_mails(&mut smtp, 2).await);
        // Maya again the same day, asking again: no second confirmation; nor
        // when the address is written in other capitals (mailboxes do not
        // tell them apart), or the form could flood one inbox.
        for (email, body) in [(maya, "Thanks!"), ("Maya@READER.example", "Thanks again!")] {
            submit(
                &app,
                json!({"uri": uri, "name": "Maya", "email": email, "body": body, "notify": true}),
            )
            .await;
            // Its moderator mail: the event is handled before the next one.
            mails.extend(next_mails(&mut smtp, 1).await);
        }
        assert_no_more_mail(&mut smtp, "after one confirmation per reader").await;

        let (to_moderator, to_readers): (Vec<Mail>, Vec<Mail>) =
            mails.into_iter().partition(|mail| mail.rcpt_to == [MODERATOR]);
        assert_eq!(to_moderator.len(), 4, "one moderator mail per comment");
        assert_eq!(to_readers.len(), 2, "one confirmation per reader");
        for (mail, email) in to_moderator.iter().zip([maya, sam, maya, "Maya@READER.example"]) {
            assert!(mail.text.contains(&format!("Email: {email}")), "{}", mail.text);
        }
        for (reader, other) in [(maya, sam), (sam, maya)] {
            let confirmations: Vec<&Mail> = to_readers.iter().filter(|mail| mail.to == reader).collect();
            assert_eq!(confirmations.len(), 1, "{reader}");
            let mail = confirmations[0];
            assert_eq!(mail.rcpt_to, [reader]);
            assert_eq!(
                mail.subject,
                format!("[Clinic blog] Confirm that you want replies to your comment on {uri}")
            );
            assert_eq!(mail.content_type, "multipart/alternative");
            assert!(!mail.message_id.is_empty());
            let confirm = html_links(&mail.html)
                .into_iter()
                .find(|(_, href)| href.contains("/subscribe/"))
                .expect("a confirmation link")
                .1;
            assert!(confirm.starts_with(&app.url("/subscribe/")), "{confirm}");
            assert!(mail.text.contains(&confirm));
            // Nobody else's address: not the other reader's, not the moderator's.
            for hidden in [other, MODERATOR] {
                assert!(
                    !mail.raw.contains(hidden),
                    "{hidden} in the mail to {reader}:\n{}",
                    mail.raw
                );
            }
        }
    })
    .await;
}

/// With neither SMTP nor webhooks, a submission records no notification
/// event at all (the id sequence of the table never moves), and the events of
/// moderation actions are discarded instead of piling up.
#[tokio::test]
async fn without_mail_or_webhooks_submissions_record_no_event() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut database = RawDatabase::connect(app.database_url()).await;
        // How many event ids were ever handed out: an event written and
        // discarded at once still moves the sequence.
        let sequence = match database.backend() {
            Backend::Sqlite => {
                "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'notification_events'"
            }
            Backend::Postgres => {
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM notification_events_id_seq"
            }
        };
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(app.submit("/quiet/", &format!("quiet comment {i}")).await);
        }
        assert_eq!(
            database.count("SELECT COUNT(*) FROM notification_events").await,
            0
        );
        assert_eq!(
            database.count(sequence).await,
            0,
            "a submission recorded an event"
        );
        assert_eq!(database.count("SELECT COUNT(*) FROM outbox").await, 0);

        // The probe works: a moderation action does record one …
        assert_eq!(app.moderate(ids[0], "approve").await.status(), StatusCode::OK);
        assert_eq!(database.count(sequence).await, 1);
        // … and it is discarded, not kept.
        let started = std::time::Instant::now();
        while database.count("SELECT COUNT(*) FROM notification_events").await > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "the event piles up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(database.count("SELECT COUNT(*) FROM outbox").await, 0);
    })
    .await;
}

#[tokio::test]
async fn the_moderation_page_shows_the_settings_without_secrets_and_sends_a_test_mail() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, smtp.port(), &[MODERATOR]);
            config.webhook_urls = vec!["https://hooks.slack.example/services/T0/B0/SECRETPATH".into()];
            config.webhook_secret = Some(SecretString::from("webhook-key-not-to-be-shown"));
            config.webhook_format = "slack".into();
        })
        .await;
        let response = app
            .admin(reqwest::Method::GET, "/api/admin/notifications")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(!text.contains("SECRETPATH"), "{text}");
        assert!(!text.contains("webhook-key-not-to-be-shown"), "{text}");
        let settings: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(settings["mail"]["server"], format!("127.0.0.1:{}", smtp.port()));
        assert_eq!(settings["mail"]["security"], "none");
        assert_eq!(settings["moderators"], serde_json::json!([MODERATOR]));
        assert_eq!(settings["per_hour"], 1000);
        assert_eq!(settings["link_ttl_seconds"], 7 * 24 * 3600);
        assert_eq!(
            settings["webhooks"]["hosts"],
            serde_json::json!(["hooks.slack.example"])
        );
        assert_eq!(settings["webhooks"]["format"], "slack");

        let bad = app
            .admin(reqwest::Method::POST, "/api/admin/notifications/test")
            .json(&serde_json::json!({"to": "not an address"}))
            .send()
            .await
            .unwrap();
        assert_error(bad, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

        let queued = app
            .admin(reqwest::Method::POST, "/api/admin/notifications/test")
            .json(&serde_json::json!({"to": "me@clinic.example"}))
            .send()
            .await
            .unwrap();
        assert_eq!(queued.status(), 202);
        let mail = tokio::time::timeout(Duration::from_secs(20), smtp.next_mail())
            .await
            .expect("the test mail arrives");
        assert_eq!(mail.rcpt_to, vec!["me@clinic.example".to_owned()]);
        let message = MessageParser::default().parse(&mail.data).unwrap();
        assert!(
            message.subject().unwrap().contains("Test mail"),
            "{:?}",
            message.subject()
        );
    })
    .await;
}

#[tokio::test]
async fn a_test_mail_without_an_smtp_server_is_a_conflict() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let settings: serde_json::Value = app
            .admin(reqwest::Method::GET, "/api/admin/notifications")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(settings["mail"].is_null(), "{settings}");
        assert!(settings["webhooks"].is_null(), "{settings}");
        let response = app
            .admin(reqwest::Method::POST, "/api/admin/notifications/test")
            .json(&serde_json::json!({"to": "me@clinic.example"}))
            .send()
            .await
            .unwrap();
        assert_error(response, reqwest::StatusCode::CONFLICT, "mail_not_configured").await;
    })
    .await;
}
