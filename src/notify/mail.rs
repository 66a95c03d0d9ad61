//! Composing every message the service mails: the moderator notification for
//! one comment, the hourly digest, the subscription confirmation, the reply
//! notification and the test mail.
//!
//! Every message is `multipart/alternative` (plain text, then HTML) and has a
//! `From`, `To`, `Date` and a `Message-ID` that the caller chooses, so that a
//! retried delivery keeps it and receivers can drop duplicates. All of them
//! carry `Auto-Submitted: auto-generated` (RFC 3834), so vacation responders
//! do not answer them.
//!
//! Reader text never becomes markup: the HTML is built with `maud`, which
//! escapes every interpolated value, and comments are shown as the text the
//! reader typed (Markdown source), not as HTML. Values that reach a header
//! (names, a page's uri) lose their control characters first, so no CR/LF can
//! start a header of its own.
//!
//! Each message is written in its recipient's language ([`Addressing::lang`],
//! chosen by the caller): every sentence comes from the server catalog
//! (`crate::i18n`), the HTML part has `lang` and `dir`, and the message says
//! `Content-Language`.
//!
//! The inputs are small structs of plain values; nothing here reads the store.

use std::fmt::Write as _;
use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use maud::{DOCTYPE, Markup, html};

use crate::domain::{Comment, CommentId};
use crate::i18n::Lang;

/// The blog the mail is about (`MARGINALIA_SITE_NAME`, `MARGINALIA_SITE_URL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Shown in brackets at the start of every subject.
    pub name: String,
    /// The blog's address; a thread's page is this followed by its uri.
    pub url: String,
}

impl Site {
    /// The page a thread belongs to: the site's URL followed by the uri.
    pub fn page_url(&self, uri: &str) -> String {
        format!("{}{uri}", self.url.trim_end_matches('/'))
    }

    fn subject(&self, rest: &str) -> String {
        header_text(&format!("[{}] {rest}", self.name))
    }
}

/// A `Message-ID` value, `<unique@domain>`. Choose `unique` from something
/// stable (the outbox row), so every retry of a delivery carries the same id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId(String);

impl MessageId {
    /// `unique` and `domain` may hold letters, digits and `.-_+=`; anything
    /// else could break the header, so it is refused.
    pub fn new(unique: &str, domain: &str) -> Result<Self, InvalidMessageId> {
        let allowed = |part: &str| {
            !part.is_empty()
                && part.len() <= 200
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_+=".contains(c))
        };
        if allowed(unique) && allowed(domain) {
            Ok(Self(format!("<{unique}@{domain}>")))
        } else {
            Err(InvalidMessageId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `Message-ID` part with characters a header cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a Message-ID part may hold only letters, digits and .-_+=")]
pub struct InvalidMessageId;

/// Who sends a message to whom, when, under which id, and in which
/// language (the recipient's).
#[derive(Debug, Clone)]
pub struct Addressing {
    pub from: Mailbox,
    pub to: Mailbox,
    pub message_id: MessageId,
    pub date: SystemTime,
    pub lang: Lang,
}

/// A comment as a moderator sees it in a mail: everything, including the
/// commenter's address, because moderators may see it (and only they get this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentForModerators {
    pub id: CommentId,
    pub uri: String,
    pub name: String,
    pub email: String,
    pub website: Option<String>,
    /// The text as the reader typed it (Markdown source).
    pub text: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Why the comment was held (`links:3, held_word:casino`), joined; empty
    /// when nothing held it but the moderation mode.
    pub reasons: String,
    /// The comment this one replies to.
    pub parent: Option<ParentComment>,
}

/// The comment a reply answers, shown for context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentComment {
    pub name: String,
    pub text: String,
}

impl CommentForModerators {
    /// The mail's view of a stored comment and, for a reply, of its parent.
    pub fn from_comment(comment: &Comment, parent: Option<&Comment>) -> Self {
        Self {
            id: comment.id,
            uri: comment.uri.clone(),
            name: comment.name.clone(),
            email: comment.email.clone(),
            website: comment.website.clone(),
            text: comment.body.clone(),
            ip: comment.ip.clone(),
            user_agent: comment.user_agent.clone(),
            reasons: comment.reasons.join(", "),
            parent: parent.map(|parent| ParentComment {
                name: parent.name.clone(),
                text: parent.body.clone(),
            }),
        }
    }
}

/// The one-click links of one comment (each a `/moderate/{token}` URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModerationLinks {
    pub approve: String,
    pub reject: String,
    pub spam: String,
}

/// One comment of a digest with its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestEntry {
    pub comment: CommentForModerators,
    pub links: ModerationLinks,
}

/// A published reply, as the subscriber whose comment it answers sees it:
/// no address of anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyForSubscriber {
    pub uri: String,
    pub reply_name: String,
    /// The reply's text as its author typed it.
    pub reply_text: String,
    /// The subscriber's own comment that was answered, for context.
    pub your_text: String,
}

/// Where a subscriber stops reply mail (each a `/unsubscribe/{token}` URL that
/// shows a page on GET and unsubscribes on POST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeLinks {
    /// Ends the subscription to this one thread; also the one-click
    /// `List-Unsubscribe` target.
    pub thread: String,
    /// Ends every subscription of this address.
    pub everything: String,
}

/// The mail a moderator gets for one comment that entered the queue.
pub fn moderator_notification(
    addressing: &Addressing,
    site: &Site,
    comment: &CommentForModerators,
    links: &ModerationLinks,
    queue_url: &str,
) -> Result<Message, lettre::error::Error> {
    let lang = addressing.lang;
    let subject = site.subject(&lang.text(
        "mail.moderator.subject",
        &[("uri", &comment.uri), ("name", &comment.name)],
    ));
    let mut text = String::new();
    write_comment_text(&mut text, lang, site, comment, links);
    let _ = write!(
        text,
        "\n{}\n",
        text_link(lang, "mail.button.openQueue", queue_url)
    );
    let html = layout(
        lang,
        &subject,
        html! {
            (comment_html(lang, site, comment, links))
            p { a href=(queue_url) style=(BUTTON) { (lang.text("mail.button.openQueue", &[])) } }
        },
    );
    build(addressing, &subject, text, html)
}

/// One mail for the comments beyond the hourly allowance of single mails.
///
/// `arrived` is how many comments were held for it, of which `entries` lists
/// the oldest (a spam wave must not make a mail of hundreds of megabytes);
/// the mail says so when it lists fewer.
pub fn moderator_digest(
    addressing: &Addressing,
    site: &Site,
    entries: &[DigestEntry],
    arrived: u64,
    queue_url: &str,
) -> Result<Message, lettre::error::Error> {
    let lang = addressing.lang;
    let count = arrived.max(entries.len() as u64);
    let subject = site.subject(&lang.text_count("mail.digest.subject", count, &[]));
    let intro = lang.text_count("mail.digest.intro", count, &[]);
    let listed = (count > entries.len() as u64)
        .then(|| lang.text("mail.digest.listed", &[("shown", &entries.len().to_string())]));
    let mut text = format!("{intro}\n");
    if let Some(listed) = &listed {
        let _ = writeln!(text, "{listed}");
    }
    for entry in entries {
        text.push_str("\n----------------------------------------\n\n");
        write_comment_text(&mut text, lang, site, &entry.comment, &entry.links);
    }
    let _ = write!(
        text,
        "\n{}\n",
        text_link(lang, "mail.button.openQueue", queue_url)
    );
    let html = layout(
        lang,
        &subject,
        html! {
            p { (intro) }
            @if let Some(listed) = &listed {
                p { (listed) }
            }
            p { a href=(queue_url) style=(BUTTON) { (lang.text("mail.button.openQueue", &[])) } }
            @for entry in entries {
                hr;
                (comment_html(lang, site, &entry.comment, &entry.links))
            }
        },
    );
    build(addressing, &subject, text, html)
}

/// The double opt-in mail: nothing else is sent to the address until the
/// reader follows `confirm_url`.
pub fn subscription_confirmation(
    addressing: &Addressing,
    site: &Site,
    uri: &str,
    confirm_url: &str,
) -> Result<Message, lettre::error::Error> {
    let lang = addressing.lang;
    let subject = site.subject(&lang.text("mail.confirm.subject", &[("uri", uri)]));
    let page = site.page_url(uri);
    let ignore = lang.text("mail.confirm.ignore", &[]);
    let text = format!(
        "{intro}\n\n{confirm}\n\n{ignore}\n",
        intro = lang.text("mail.confirm.intro", &[("page", &page)]),
        confirm = text_link(lang, "mail.confirm.link", confirm_url),
    );
    let html = layout(
        lang,
        &subject,
        html! {
            p { (lang.html("mail.confirm.intro", &[("page", html! { a href=(page) { (page) } })])) }
            p { a href=(confirm_url) style=(BUTTON) { (lang.text("mail.confirm.button", &[])) } }
            p { (ignore) }
        },
    );
    build(addressing, &subject, text, html)
}

/// The mail a confirmed subscriber gets when a reply to their comment is
/// published, with unsubscribe links and one-click unsubscribe (RFC 8058).
pub fn reply_notification(
    addressing: &Addressing,
    site: &Site,
    reply: &ReplyForSubscriber,
    unsubscribe: &UnsubscribeLinks,
) -> Result<Message, lettre::error::Error> {
    let lang = addressing.lang;
    let subject = site.subject(&lang.text(
        "mail.reply.subject",
        &[("uri", &reply.uri), ("name", &reply.reply_name)],
    ));
    let page = site.page_url(&reply.uri);
    let text = format!(
        "{intro}\n\n\
         {reply_text}\n\n\
         {yours}\n{your_text}\n\n\
         {read}\n\n\
         {stop_thread}\n\
         {stop_all}\n",
        intro = lang.text(
            "mail.reply.intro",
            &[("name", &reply.reply_name), ("page", &page)]
        ),
        reply_text = reply.reply_text,
        yours = lang.text("mail.reply.yours", &[]),
        your_text = quote(&reply.your_text),
        read = text_link(lang, "mail.reply.read", &page),
        stop_thread = text_link(lang, "mail.reply.stopThread", &unsubscribe.thread),
        stop_all = text_link(lang, "mail.reply.stopAll", &unsubscribe.everything),
    );
    let html = layout(
        lang,
        &subject,
        html! {
            p {
                (lang.html("mail.reply.intro", &[
                    ("name", html! { strong { (reply.reply_name) } }),
                    ("page", html! { a href=(page) { (page) } }),
                ]))
            }
            div style=(TEXT_BLOCK) { (reply.reply_text) }
            p { (lang.text("mail.reply.yours", &[])) }
            blockquote style=(QUOTE) { (reply.your_text) }
            p { a href=(page) style=(BUTTON) { (lang.text("mail.reply.read", &[])) } }
            p style=(SMALL) {
                a href=(unsubscribe.thread) { (lang.text("mail.reply.stopThread", &[])) }
                " · "
                a href=(unsubscribe.everything) { (lang.text("mail.reply.stopAll", &[])) }
            }
        },
    );
    let message = builder(addressing, &subject)
        .raw_header(raw_header(
            "List-Unsubscribe",
            format!("<{}>", unsubscribe.thread),
        ))
        .raw_header(raw_header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(text, html))?;
    Ok(message)
}

/// A mail a moderator sends themself from the moderation page to check the
/// settings.
pub fn test_mail(addressing: &Addressing, site: &Site) -> Result<Message, lettre::error::Error> {
    let lang = addressing.lang;
    let subject = site.subject(&lang.text("mail.test.subject", &[]));
    let works = lang.text("mail.test.works", &[]);
    let text = format!(
        "{}\n\n{works}\n",
        lang.text("mail.test.intro", &[("site", &site.url)])
    );
    let html = layout(
        lang,
        &subject,
        html! {
            p { (lang.html("mail.test.intro", &[("site", html! { a href=(site.url) { (site.url) } })])) }
            p { (works) }
        },
    );
    build(addressing, &subject, text, html)
}

const BUTTON: &str = "display:inline-block;padding:8px 16px;margin:0 8px 8px 0;\
     border-radius:4px;background:#1f5fbf;color:#ffffff;text-decoration:none;font-weight:bold";
const TEXT_BLOCK: &str = "white-space:pre-wrap;padding:12px;background:#f4f4f4;border-radius:4px";
const QUOTE: &str =
    "white-space:pre-wrap;margin:0 0 12px;padding-left:12px;border-left:3px solid #cccccc;color:#555555";
const SMALL: &str = "font-size:small;color:#666666";

/// The HTML document of a mail, in its language and writing direction (the
/// styles use no left or right, so a right-to-left mail mirrors whole).
fn layout(lang: Lang, title: &str, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) dir=(lang.dir()) {
            head {
                meta charset="utf-8";
                title { (title) }
            }
            body style="font-family:sans-serif;line-height:1.5;max-width:640px" {
                (content)
            }
        }
    }
    .into_string()
}

/// "Label: address", the plain-text form of a button (the colon and its
/// spacing are the language's: `mail.field`).
fn text_link(lang: Lang, label_key: &str, url: &str) -> String {
    lang.text(
        "mail.field",
        &[("label", &lang.text(label_key, &[])), ("value", url)],
    )
}

/// The rows of facts about a comment a moderator sees: label key and value.
fn comment_facts(comment: &CommentForModerators) -> Vec<(&'static str, &str)> {
    let mut facts = vec![
        ("mail.label.name", comment.name.as_str()),
        ("mail.label.email", comment.email.as_str()),
    ];
    if let Some(website) = &comment.website {
        facts.push(("mail.label.website", website));
    }
    if let Some(ip) = &comment.ip {
        facts.push(("mail.label.ip", ip));
    }
    if let Some(user_agent) = &comment.user_agent {
        facts.push(("mail.label.userAgent", user_agent));
    }
    if !comment.reasons.is_empty() {
        facts.push(("mail.label.reasons", &comment.reasons));
    }
    facts
}

fn comment_html(lang: Lang, site: &Site, comment: &CommentForModerators, links: &ModerationLinks) -> Markup {
    let page = site.page_url(&comment.uri);
    // `text-align:start`: the labels sit at the line's start in either direction.
    html! {
        p { (lang.html("mail.comment.on", &[("page", html! { a href=(page) { (page) } })])) }
        table style="border-collapse:collapse" {
            @for (label, value) in comment_facts(comment) {
                tr { th style="text-align:start;padding-inline-end:12px" { (lang.text(label, &[])) } td { (value) } }
            }
        }
        @if let Some(parent) = &comment.parent {
            p { (lang.html("mail.comment.inReplyTo", &[("name", html! { strong { (parent.name) } })])) }
            blockquote style=(QUOTE) { (parent.text) }
        }
        div style=(TEXT_BLOCK) { (comment.text) }
        p {
            a href=(links.approve) style=(BUTTON) { (lang.text("mail.button.approve", &[])) }
            a href=(links.reject) style=(BUTTON) { (lang.text("mail.button.reject", &[])) }
            a href=(links.spam) style=(BUTTON) { (lang.text("mail.button.spam", &[])) }
        }
    }
}

fn write_comment_text(
    text: &mut String,
    lang: Lang,
    site: &Site,
    comment: &CommentForModerators,
    links: &ModerationLinks,
) {
    let page = site.page_url(&comment.uri);
    let _ = writeln!(text, "{}", lang.text("mail.comment.on", &[("page", &page)]));
    for (label, value) in comment_facts(comment) {
        let label = lang.text(label, &[]);
        let _ = writeln!(
            text,
            "{}",
            lang.text("mail.field", &[("label", &label), ("value", value)])
        );
    }
    if let Some(parent) = &comment.parent {
        let _ = write!(
            text,
            "\n{}\n{}\n",
            lang.text("mail.comment.inReplyTo", &[("name", &parent.name)]),
            quote(&parent.text)
        );
    }
    let _ = write!(
        text,
        "\n{}\n\n{}\n{}\n{}\n",
        comment.text,
        text_link(lang, "mail.button.approve", &links.approve),
        text_link(lang, "mail.button.reject", &links.reject),
        text_link(lang, "mail.button.spam", &links.spam),
    );
}

/// Text quoted mail-style, `> ` before each line.
fn quote(text: &str) -> String {
    text.lines()
        .map(|line| format!("> {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Header text without control characters: CR and LF (and the rest) become
/// spaces, so a value can never end its header and start another.
fn header_text(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn header_mailbox(mailbox: &Mailbox) -> Mailbox {
    Mailbox::new(mailbox.name.as_deref().map(header_text), mailbox.email.clone())
}

fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), header_text(&value))
}

fn builder(addressing: &Addressing, subject: &str) -> lettre::message::MessageBuilder {
    Message::builder()
        .from(header_mailbox(&addressing.from))
        .to(header_mailbox(&addressing.to))
        .subject(subject)
        .date(addressing.date)
        .message_id(Some(addressing.message_id.as_str().to_owned()))
        .raw_header(raw_header("Auto-Submitted", "auto-generated".to_owned()))
        // RFC 3282: what language the reader is addressed in.
        .raw_header(raw_header("Content-Language", addressing.lang.tag().to_owned()))
}

fn build(
    addressing: &Addressing,
    subject: &str,
    text: String,
    html: String,
) -> Result<Message, lettre::error::Error> {
    builder(addressing, subject).multipart(MultiPart::alternative_plain_html(text, html))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use lettre::message::Mailbox;
    use mail_parser::{Message as Parsed, MessageParser, MimeHeaders};
    use scraper::{Html, Selector};

    use super::*;

    fn site() -> Site {
        Site {
            name: "Clinic blog".into(),
            url: "https://blog.clinic.example/".into(),
        }
    }

    fn addressing(to: &str) -> Addressing {
        Addressing {
            from: "Clinic blog <comments@clinic.example>".parse().unwrap(),
            to: to.parse().unwrap(),
            message_id: MessageId::new("outbox-17", "comments.clinic.example").unwrap(),
            date: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            lang: Lang::En,
        }
    }

    fn maya() -> CommentForModerators {
        CommentForModerators {
            id: 42,
            uri: "/occupational-therapy/".into(),
            name: "Maya".into(),
            email: "maya@reader.example".into(),
            website: Some("https://maya.example/".into()),
            text: "Is this covered by insurance?\n\nThanks!".into(),
            ip: Some("203.0.113.9".into()),
            user_agent: Some("Firefox/140".into()),
            reasons: "links:2, held_word:casino".into(),
            parent: Some(ParentComment {
                name: "Dr. Ahn".into(),
                text: "Ask me anything about OT.".into(),
            }),
        }
    }

    fn links(id: u32) -> ModerationLinks {
        ModerationLinks {
            approve: format!("https://comments.clinic.example/moderate/approve-{id}"),
            reject: format!("https://comments.clinic.example/moderate/reject-{id}"),
            spam: format!("https://comments.clinic.example/moderate/spam-{id}"),
        }
    }

    const QUEUE: &str = "https://comments.clinic.example/admin";

    fn parse(message: &Message) -> Parsed<'static> {
        let bytes = message.formatted();
        MessageParser::default()
            .parse(&bytes)
            .expect("a parsable message")
            .into_owned()
    }

    /// The text and HTML alternatives, asserting that both are there.
    fn alternatives(parsed: &Parsed<'_>) -> (String, String) {
        assert_eq!(parsed.content_type().unwrap().ctype(), "multipart");
        assert_eq!(parsed.content_type().unwrap().subtype(), Some("alternative"));
        assert_eq!(parsed.text_body_count(), 1);
        assert_eq!(parsed.html_body_count(), 1);
        let text = parsed.text_bodies().next().unwrap();
        assert_eq!(text.content_type().unwrap().subtype(), Some("plain"));
        let html = parsed.html_bodies().next().unwrap();
        assert_eq!(html.content_type().unwrap().subtype(), Some("html"));
        // Mail lines end in CRLF on the wire.
        (
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            parsed.body_html(0).unwrap().replace("\r\n", "\n"),
        )
    }

    fn assert_common_headers(parsed: &Parsed<'_>, to: &str) {
        assert_eq!(parsed.message_id(), Some("outbox-17@comments.clinic.example"));
        assert_eq!(parsed.date().unwrap().to_timestamp(), 1_800_000_000);
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("comments@clinic.example"));
        assert_eq!(from.name(), Some("Clinic blog"));
        assert_eq!(parsed.to().unwrap().first().unwrap().address(), Some(to));
        assert_eq!(
            parsed.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
    }

    fn hrefs(html: &str) -> Vec<String> {
        let document = Html::parse_document(html);
        let selector = Selector::parse("a[href]").unwrap();
        document
            .select(&selector)
            .map(|a| a.value().attr("href").unwrap().to_owned())
            .collect()
    }

    fn link_texts(html: &str) -> Vec<String> {
        let document = Html::parse_document(html);
        let selector = Selector::parse("a").unwrap();
        document
            .select(&selector)
            .map(|a| a.text().collect::<String>())
            .collect()
    }

    #[test]
    fn the_moderator_notification_says_what_and_where_and_has_the_buttons() {
        let message = moderator_notification(
            &addressing("mod@clinic.example"),
            &site(),
            &maya(),
            &links(1),
            QUEUE,
        )
        .unwrap();
        let parsed = parse(&message);
        assert_common_headers(&parsed, "mod@clinic.example");
        assert_eq!(
            parsed.subject(),
            Some("[Clinic blog] New comment awaiting moderation on /occupational-therapy/ from Maya")
        );
        let (text, html) = alternatives(&parsed);
        for expected in [
            "On https://blog.clinic.example/occupational-therapy/",
            "Name: Maya",
            "Email: maya@reader.example",
            "Website: https://maya.example/",
            "IP: 203.0.113.9",
            "Reasons: links:2, held_word:casino",
            "Is this covered by insurance?\n\nThanks!",
            "In reply to Dr. Ahn:\n> Ask me anything about OT.",
            "Approve: https://comments.clinic.example/moderate/approve-1",
            "Reject: https://comments.clinic.example/moderate/reject-1",
            "Spam: https://comments.clinic.example/moderate/spam-1",
            "Open the queue: https://comments.clinic.example/admin",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        assert_eq!(
            link_texts(&html),
            [
                "https://blog.clinic.example/occupational-therapy/",
                "Approve",
                "Reject",
                "Spam",
                "Open the queue"
            ]
        );
        assert_eq!(
            hrefs(&html),
            [
                "https://blog.clinic.example/occupational-therapy/",
                "https://comments.clinic.example/moderate/approve-1",
                "https://comments.clinic.example/moderate/reject-1",
                "https://comments.clinic.example/moderate/spam-1",
                QUEUE
            ]
        );
        for expected in [
            "maya@reader.example",
            "Dr. Ahn",
            "Ask me anything about OT.",
            "Firefox/140",
            "links:2, held_word:casino",
        ] {
            assert!(html.contains(expected), "{expected:?} not in {html}");
        }
    }

    #[test]
    fn a_top_level_comment_has_no_reply_context() {
        let mut comment = maya();
        comment.parent = None;
        comment.website = None;
        let message = moderator_notification(
            &addressing("m@clinic.example"),
            &site(),
            &comment,
            &links(1),
            QUEUE,
        )
        .unwrap();
        let (text, html) = alternatives(&parse(&message));
        assert!(!text.contains("In reply to") && !html.contains("In reply to"));
        assert!(!text.contains("Website:") && !html.contains("Website"));
    }

    #[test]
    fn the_digest_lists_every_comment_with_its_own_buttons() {
        let entries: Vec<_> = (1..=3)
            .map(|i| DigestEntry {
                comment: CommentForModerators {
                    id: i64::from(i),
                    name: format!("Reader {i}"),
                    ..maya()
                },
                links: links(i),
            })
            .collect();
        let message = moderator_digest(
            &addressing("mod@clinic.example"),
            &site(),
            &entries,
            entries.len() as u64,
            QUEUE,
        )
        .unwrap();
        let parsed = parse(&message);
        assert_common_headers(&parsed, "mod@clinic.example");
        assert_eq!(
            parsed.subject(),
            Some("[Clinic blog] 3 new comments awaiting moderation")
        );
        let (text, html) = alternatives(&parsed);
        let links_html = hrefs(&html);
        for i in 1..=3 {
            assert!(text.contains(&format!("Name: Reader {i}")));
            for link in [links(i).approve, links(i).reject, links(i).spam] {
                assert!(text.contains(&link), "{link}");
                assert_eq!(
                    links_html.iter().filter(|href| **href == link).count(),
                    1,
                    "{link}"
                );
            }
        }
        let buttons = link_texts(&html);
        assert_eq!(buttons.iter().filter(|t| *t == "Approve").count(), 3);
        assert_eq!(buttons.iter().filter(|t| *t == "Open the queue").count(), 1);

        let one =
            moderator_digest(&addressing("m@clinic.example"), &site(), &entries[..1], 1, QUEUE).unwrap();
        assert_eq!(
            parse(&one).subject(),
            Some("[Clinic blog] 1 new comment awaiting moderation")
        );
    }

    #[test]
    fn the_confirmation_mail_asks_once_and_links_to_the_confirmation() {
        let confirm = "https://comments.clinic.example/subscribe/tok";
        let message = subscription_confirmation(
            &addressing("maya@reader.example"),
            &site(),
            "/occupational-therapy/",
            confirm,
        )
        .unwrap();
        let parsed = parse(&message);
        assert_common_headers(&parsed, "maya@reader.example");
        assert_eq!(
            parsed.subject(),
            Some("[Clinic blog] Confirm that you want replies to your comment on /occupational-therapy/")
        );
        let (text, html) = alternatives(&parsed);
        assert!(text.contains(confirm));
        assert!(hrefs(&html).contains(&confirm.to_owned()));
        assert!(parsed.header("List-Unsubscribe").is_none());
    }

    fn reply() -> ReplyForSubscriber {
        ReplyForSubscriber {
            uri: "/occupational-therapy/".into(),
            reply_name: "Dr. Ahn".into(),
            reply_text: "Yes, most plans cover it.".into(),
            your_text: "Is this covered by insurance?".into(),
        }
    }

    fn unsubscribe() -> UnsubscribeLinks {
        UnsubscribeLinks {
            thread: "https://comments.clinic.example/unsubscribe/thread-tok".into(),
            everything: "https://comments.clinic.example/unsubscribe/all-tok".into(),
        }
    }

    #[test]
    fn the_reply_notification_offers_one_click_unsubscribe() {
        let message = reply_notification(
            &addressing("maya@reader.example"),
            &site(),
            &reply(),
            &unsubscribe(),
        )
        .unwrap();
        let parsed = parse(&message);
        assert_common_headers(&parsed, "maya@reader.example");
        assert_eq!(
            parsed.subject(),
            Some("[Clinic blog] New reply to your comment on /occupational-therapy/ from Dr. Ahn")
        );
        assert_eq!(
            parsed.header_raw("List-Unsubscribe").map(str::trim),
            Some("<https://comments.clinic.example/unsubscribe/thread-tok>")
        );
        assert_eq!(
            parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        let (text, html) = alternatives(&parsed);
        for expected in [
            "Yes, most plans cover it.",
            "> Is this covered by insurance?",
            "Stop replies to this thread: https://comments.clinic.example/unsubscribe/thread-tok",
            "Stop all reply mail: https://comments.clinic.example/unsubscribe/all-tok",
        ] {
            assert!(text.contains(expected), "{expected:?} not in {text}");
        }
        let links_html = hrefs(&html);
        assert!(links_html.contains(&unsubscribe().thread));
        assert!(links_html.contains(&unsubscribe().everything));
        assert!(links_html.contains(&"https://blog.clinic.example/occupational-therapy/".to_owned()));
        // Nobody's address is in a reader's mail but their own, in To.
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert_eq!(raw.matches('@').count(), 3, "From, To and Message-ID only: {raw}");
    }

    #[test]
    fn the_test_mail_has_the_same_headers() {
        let message = test_mail(&addressing("Mod <mod@clinic.example>"), &site()).unwrap();
        let parsed = parse(&message);
        assert_common_headers(&parsed, "mod@clinic.example");
        assert_eq!(parsed.subject(), Some("[Clinic blog] Test mail from marginalia"));
        let (text, _) = alternatives(&parsed);
        assert!(text.contains("https://blog.clinic.example/"));
    }

    #[test]
    fn mail_speaks_the_recipients_language_and_direction() {
        let mut german = addressing("mod@clinic.example");
        german.lang = Lang::De;
        let message = moderator_notification(&german, &site(), &maya(), &links(1), QUEUE).unwrap();
        let parsed = parse(&message);
        assert_eq!(parsed.header_raw("Content-Language").map(str::trim), Some("de"));
        let subject = parsed.subject().unwrap();
        assert_eq!(
            subject,
            format!(
                "[Clinic blog] {}",
                Lang::De.text(
                    "mail.moderator.subject",
                    &[("uri", "/occupational-therapy/"), ("name", "Maya")]
                )
            )
        );
        assert_ne!(
            subject,
            "[Clinic blog] New comment awaiting moderation on /occupational-therapy/ from Maya"
        );
        let (text, html) = alternatives(&parsed);
        assert!(html.contains("<html lang=\"de\" dir=\"ltr\">"), "{html}");
        assert!(
            text.contains(&Lang::De.text(
                "mail.field",
                &[
                    ("label", &Lang::De.text("mail.button.approve", &[])),
                    ("value", "https://comments.clinic.example/moderate/approve-1")
                ]
            )),
            "{text}"
        );

        let mut arabic = addressing("maya@reader.example");
        arabic.lang = Lang::Ar;
        let message = subscription_confirmation(
            &arabic,
            &site(),
            "/occupational-therapy/",
            "https://comments.clinic.example/subscribe/tok",
        )
        .unwrap();
        let parsed = parse(&message);
        let (_, html) = alternatives(&parsed);
        assert!(html.contains("<html lang=\"ar\" dir=\"rtl\">"), "{html}");
        assert_eq!(
            link_texts(&html)[1],
            Lang::Ar.text("mail.confirm.button", &[]),
            "the button speaks Arabic"
        );
    }

    #[test]
    fn the_digest_counts_with_the_languages_plural_rules() {
        let entry = |i: u32| DigestEntry {
            comment: CommentForModerators {
                id: i64::from(i),
                ..maya()
            },
            links: links(i),
        };
        let mut russian = addressing("mod@clinic.example");
        russian.lang = Lang::Ru;
        let subjects: Vec<String> = [1, 3, 5]
            .into_iter()
            .map(|n| {
                let entries: Vec<_> = (1..=n).map(entry).collect();
                let message =
                    moderator_digest(&russian, &site(), &entries, entries.len() as u64, QUEUE).unwrap();
                parse(&message).subject().unwrap().to_owned()
            })
            .collect();
        for (subject, n) in subjects.iter().zip([1, 3, 5]) {
            assert_eq!(
                *subject,
                format!(
                    "[Clinic blog] {}",
                    Lang::Ru.text_count("mail.digest.subject", n, &[])
                )
            );
        }
        // one, few and many are three different sentences in Russian.
        let words: Vec<String> = subjects.iter().map(|s| s.replace(char::is_numeric, "")).collect();
        assert!(words[0] != words[1] && words[1] != words[2], "{words:?}");
    }

    #[test]
    fn message_ids_hold_only_safe_characters() {
        assert_eq!(
            MessageId::new("outbox-17.2", "comments.example")
                .unwrap()
                .as_str(),
            "<outbox-17.2@comments.example>"
        );
        for (unique, domain) in [
            ("", "d"),
            ("u", ""),
            ("a>b", "d"),
            ("a b", "d"),
            ("a\r\nBcc: x", "d"),
            ("a@b", "d"),
            ("a", "d\n"),
        ] {
            assert_eq!(
                MessageId::new(unique, domain),
                Err(InvalidMessageId),
                "{unique:?}"
            );
        }
    }

    /// Hostile payloads from tests/xss/payloads.jsonl in every reader value:
    /// the HTML part shows them as text (the parsed document's text holds them
    /// verbatim) and gains no element or attribute from them.
    #[test]
    fn reader_values_are_escaped_in_the_html_part() {
        let payloads: Vec<String> = include_str!("../../tests/xss/payloads.jsonl")
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["payload"].as_str().unwrap().to_owned()
            })
            // Control characters are refused in names and never reach a page.
            .filter(|payload| !payload.chars().any(char::is_control))
            .step_by(7)
            .take(40)
            .collect();
        assert!(payloads.len() >= 20);
        let elements = Selector::parse("*").unwrap();
        for payload in &payloads {
            let comment = CommentForModerators {
                name: payload.clone(),
                email: "x@reader.example".into(),
                website: Some(payload.clone()),
                text: payload.clone(),
                user_agent: Some(payload.clone()),
                reasons: payload.clone(),
                parent: Some(ParentComment {
                    name: payload.clone(),
                    text: payload.clone(),
                }),
                ..maya()
            };
            let reply = ReplyForSubscriber {
                reply_name: payload.clone(),
                reply_text: payload.clone(),
                your_text: payload.clone(),
                ..reply()
            };
            let hostile_site = Site {
                name: payload.clone(),
                ..site()
            };
            let messages = [
                moderator_notification(&addressing("m@c.example"), &site(), &comment, &links(1), QUEUE),
                moderator_digest(
                    &addressing("m@c.example"),
                    &site(),
                    &[DigestEntry {
                        comment: comment.clone(),
                        links: links(1),
                    }],
                    1,
                    QUEUE,
                ),
                reply_notification(&addressing("m@c.example"), &site(), &reply, &unsubscribe()),
                test_mail(&addressing("m@c.example"), &hostile_site),
            ];
            for message in messages {
                let parsed = parse(&message.unwrap());
                let (_, html) = alternatives(&parsed);
                let document = Html::parse_document(&html);
                let text: String = document.root_element().text().collect();
                assert!(text.contains(payload.as_str()), "{payload:?} not shown as text");
                for element in document.select(&elements) {
                    let name = element.value().name();
                    assert!(
                        [
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
                            "hr"
                        ]
                        .contains(&name),
                        "<{name}> from {payload:?}"
                    );
                    for (attribute, value) in element.value().attrs() {
                        assert!(
                            ["href", "style", "charset", "lang", "dir"].contains(&attribute),
                            "{attribute} from {payload:?}"
                        );
                        if attribute == "href" {
                            assert!(value.starts_with("https://"), "{value} from {payload:?}");
                        }
                    }
                }
            }
        }
    }

    /// A name or uri with CR/LF cannot start a header of its own, in the
    /// subject or in a mailbox.
    #[test]
    fn header_injection_through_reader_values_is_impossible() {
        let comment = CommentForModerators {
            name: "Maya\r\nBcc: evil@attacker.example".into(),
            uri: "/a/\nX-Injected: yes".into(),
            ..maya()
        };
        let mut addressing = addressing("mod@clinic.example");
        addressing.to = Mailbox::new(
            Some("Mod\r\nBcc: evil@attacker.example".into()),
            "mod@clinic.example".parse().unwrap(),
        );
        let evil_site = Site {
            name: "Clinic\r\nCc: evil@attacker.example".into(),
            ..site()
        };
        let message = moderator_notification(&addressing, &evil_site, &comment, &links(1), QUEUE).unwrap();
        let parsed = parse(&message);
        for header in ["Bcc", "Cc", "X-Injected"] {
            assert!(parsed.header(header).is_none(), "{header} was injected");
        }
        assert_eq!(
            parsed.subject(),
            Some(
                "[Clinic  Cc: evil@attacker.example] New comment awaiting moderation on /a/ X-Injected: yes from Maya  Bcc: evil@attacker.example"
            )
        );
        let to = parsed.to().unwrap().first().unwrap();
        assert_eq!(to.address(), Some("mod@clinic.example"));
        let raw = String::from_utf8(message.formatted()).unwrap();
        let header_block = raw.split("\r\n\r\n").next().unwrap();
        for line in header_block.split("\r\n") {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("Cc") && !line.starts_with("X-Injected"),
                "{line}"
            );
        }
    }

    #[test]
    fn the_page_link_joins_site_url_and_uri_with_one_slash() {
        assert_eq!(site().page_url("/a/"), "https://blog.clinic.example/a/");
        let under_path = Site {
            url: "https://clinic.example/blog".into(),
            ..site()
        };
        assert_eq!(under_path.page_url("/a/"), "https://clinic.example/blog/a/");
    }
}
