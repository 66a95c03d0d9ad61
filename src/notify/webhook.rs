//! Webhook events: the JSON each configured URL receives when a comment enters
//! the queue or is moderated, the Slack and Discord shapes of the same event,
//! and the signature that lets a receiver check who sent it.
//!
//! The payload is built from [`WebhookComment`], which has no field for an
//! email address, IP or user agent, so none can reach a webhook.
//!
//! Signature (the scheme of Stripe and GitHub): the header
//! `X-Marginalia-Signature: t=UNIX_SECONDS,v1=HEX` where `HEX` is the lowercase
//! hex HMAC-SHA256, keyed with `MARGINALIA_WEBHOOK_SECRET`, of the timestamp, a
//! dot and the exact body bytes (`"{t}.{body}"`). The timestamp is signed too,
//! so a receiver that also refuses old timestamps ([`verify`] with a
//! tolerance) cannot be fed a recorded delivery again later.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::domain::{CommentId, PublicComment, Status};

type HmacSha256 = Hmac<Sha256>;

/// The name of the signature header.
pub const SIGNATURE_HEADER: &str = "X-Marginalia-Signature";

/// The longest comment excerpt in a chat message, in characters.
const CHAT_EXCERPT_CHARS: usize = 300;

/// What happened to a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum WebhookEvent {
    #[serde(rename = "comment.pending")]
    Pending,
    #[serde(rename = "comment.approved")]
    Approved,
    #[serde(rename = "comment.rejected")]
    Rejected,
    #[serde(rename = "comment.spam")]
    Spam,
    #[serde(rename = "comment.deleted")]
    Deleted,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Rejected,
        Self::Spam,
        Self::Deleted,
    ];

    /// The event's name in the payload (`comment.pending`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "comment.pending",
            Self::Approved => "comment.approved",
            Self::Rejected => "comment.rejected",
            Self::Spam => "comment.spam",
            Self::Deleted => "comment.deleted",
        }
    }

    /// The event a moderation decision causes.
    pub fn for_status(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Approved => Self::Approved,
            Status::Rejected => Self::Rejected,
            Status::Spam => Self::Spam,
        }
    }

    /// How a chat message words it.
    fn headline(self) -> &'static str {
        match self {
            Self::Pending => "New comment awaiting moderation",
            Self::Approved => "Comment approved",
            Self::Rejected => "Comment rejected",
            Self::Spam => "Comment marked as spam",
            Self::Deleted => "Comment deleted",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which body each webhook URL receives (`MARGINALIA_WEBHOOK_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WebhookFormat {
    /// The generic JSON event ([`WebhookPayload`]).
    #[default]
    Json,
    /// A Slack incoming-webhook message.
    Slack,
    /// A Discord incoming-webhook message.
    Discord,
}

impl FromStr for WebhookFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "json" => Ok(Self::Json),
            "slack" => Ok(Self::Slack),
            "discord" => Ok(Self::Discord),
            _ => Err("must be one of json, slack, discord".into()),
        }
    }
}

/// The comment as a webhook sees it: its public shape plus where it is, where
/// it stands and where a moderator handles it. There is deliberately no field
/// for the commenter's email, IP or user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookComment {
    #[serde(flatten)]
    pub public: PublicComment,
    pub uri: String,
    /// The status after the event; for `comment.deleted`, the status it had.
    pub status: Status,
    /// The moderation page for this comment (an absolute URL).
    pub admin_url: String,
}

/// The generic JSON body of one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPayload {
    pub event: WebhookEvent,
    /// Unique per delivery and the same on every retry of it, so a receiver
    /// can drop duplicates.
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub comment: WebhookComment,
}

impl WebhookPayload {
    pub fn comment_id(&self) -> CommentId {
        self.comment.public.id
    }

    /// The request body in `format`. `site_name` heads chat messages.
    pub fn body(&self, format: WebhookFormat, site_name: &str) -> Vec<u8> {
        let body = match format {
            WebhookFormat::Json => serde_json::to_vec(self),
            WebhookFormat::Slack => serde_json::to_vec(&self.slack_message(site_name)),
            WebhookFormat::Discord => serde_json::to_vec(&self.discord_message(site_name)),
        };
        // Only strings, numbers and a date: serializing cannot fail.
        body.expect("a webhook payload serializes")
    }

    /// `{"text": ...}` in Slack's mrkdwn, with reader text escaped so that it
    /// cannot form links or mentions (`<!channel>`).
    fn slack_message(&self, site_name: &str) -> SlackMessage {
        let comment = &self.comment;
        let text = format!(
            "[{site}] {headline} on {uri} from {name}:\n>{excerpt}\n<{admin}|Open the queue>",
            site = slack_escape(site_name),
            headline = self.event.headline(),
            uri = slack_escape(&comment.uri),
            name = slack_escape(&comment.public.name),
            excerpt = slack_escape(&excerpt(&comment.public.body_html)).replace('\n', "\n>"),
            admin = slack_escape(&comment.admin_url),
        );
        SlackMessage { text }
    }

    /// `{"content": ...}` in Discord's Markdown, with reader text escaped and
    /// every mention switched off.
    fn discord_message(&self, site_name: &str) -> DiscordMessage {
        let comment = &self.comment;
        let content = format!(
            "[{site}] {headline} on {uri} from {name}:\n> {excerpt}\n[Open the queue](<{admin}>)",
            site = discord_escape(site_name),
            headline = self.event.headline(),
            uri = discord_escape(&comment.uri),
            name = discord_escape(&comment.public.name),
            excerpt = discord_escape(&excerpt(&comment.public.body_html)).replace('\n', "\n> "),
            admin = comment.admin_url.replace('>', "%3E"),
        );
        DiscordMessage {
            content,
            allowed_mentions: AllowedMentions { parse: Vec::new() },
        }
    }
}

#[derive(Serialize)]
struct SlackMessage {
    text: String,
}

#[derive(Serialize)]
struct DiscordMessage {
    content: String,
    allowed_mentions: AllowedMentions,
}

/// `{"parse": []}`: no `@everyone`, role or user mention in a comment pings anyone.
#[derive(Serialize)]
struct AllowedMentions {
    parse: Vec<String>,
}

/// The text of sanitized comment HTML, shortened for a chat message. The input
/// is the sanitizer's output (well-formed tags, text escaped with the five
/// basic entities), so dropping tags and decoding those entities is enough.
fn excerpt(body_html: &str) -> String {
    let mut text = String::with_capacity(body_html.len());
    let mut in_tag = false;
    for c in body_html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    let text = text.trim();
    if text.chars().count() <= CHAT_EXCERPT_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(CHAT_EXCERPT_CHARS).collect();
    short.push('…');
    short
}

/// Slack's three control characters in message text.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Backslash before every character Discord's Markdown gives a meaning.
fn discord_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\*_~`|>#[]()<-:@".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The `X-Marginalia-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mac = signed_mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(mac))
}

fn signed_mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a receiver refuses a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not t=UNIX_SECONDS,v1=HEX")]
    Malformed,
    #[error("no v1 signature matches the body")]
    Mismatch,
    #[error("the signature's timestamp is too far from now")]
    OutsideTolerance,
}

/// What a receiver does with a delivery: checks that one `v1` signature in
/// `header` is the HMAC of `"{t}.{body}"` (in constant time) and that `t` is
/// within `tolerance_seconds` of `now` (unix seconds), which makes a recorded
/// delivery useless later.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => {
                timestamp = Some(value.parse::<i64>().map_err(|_| SignatureError::Malformed)?);
            }
            Some(("v1", value)) => {
                signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?);
            }
            // Other schemes may be added later; a receiver skips what it does not know.
            Some((key, _)) if key != "t" => {}
            _ => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > tolerance_seconds.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance);
    }
    let mac = signed_mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use hmac::{Hmac, Mac};
    use serde_json::{Value, json};
    use sha2::Sha256;
    use time::macros::datetime;

    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret";
    const T: i64 = 1_800_000_000;

    fn payload(event: WebhookEvent) -> WebhookPayload {
        WebhookPayload {
            event,
            id: "evt_42_1".into(),
            created_at: datetime!(2026-11-27 10:00:00 UTC),
            comment: WebhookComment {
                public: PublicComment {
                    id: 42,
                    parent_id: Some(7),
                    name: "Maya <b>@everyone</b>".into(),
                    website: Some("https://maya.example/".into()),
                    body_html: "<p>Is it <em>safe</em> &amp; covered? &lt;script&gt;</p>".into(),
                    created_at: datetime!(2026-11-27 09:59:00 UTC),
                },
                uri: "/occupational-therapy/".into(),
                status: Status::Pending,
                admin_url: "https://comments.clinic.example/admin#comment-42".into(),
            },
        }
    }

    #[test]
    fn the_json_event_has_the_documented_shape_and_nothing_private() {
        let body = payload(WebhookEvent::Pending).body(WebhookFormat::Json, "Clinic blog");
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            json!({
                "event": "comment.pending",
                "id": "evt_42_1",
                "created_at": "2026-11-27T10:00:00Z",
                "comment": {
                    "id": 42,
                    "parent_id": 7,
                    "name": "Maya <b>@everyone</b>",
                    "website": "https://maya.example/",
                    "body_html": "<p>Is it <em>safe</em> &amp; covered? &lt;script&gt;</p>",
                    "created_at": "2026-11-27T09:59:00Z",
                    "uri": "/occupational-therapy/",
                    "status": "pending",
                    "admin_url": "https://comments.clinic.example/admin#comment-42"
                }
            })
        );
        let raw = String::from_utf8(body).unwrap();
        for private in ["email", "\"ip\"", "user_agent"] {
            assert!(!raw.contains(private), "{private} in {raw}");
        }
    }

    #[test]
    fn every_event_has_its_documented_name() {
        let names: Vec<_> = WebhookEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "comment.pending",
                "comment.approved",
                "comment.rejected",
                "comment.spam",
                "comment.deleted"
            ]
        );
        for event in WebhookEvent::ALL {
            let value: Value =
                serde_json::from_slice(&payload(event).body(WebhookFormat::Json, "x")).unwrap();
            assert_eq!(value["event"], event.as_str());
        }
        assert_eq!(WebhookEvent::for_status(Status::Spam), WebhookEvent::Spam);
    }

    #[test]
    fn the_format_names_parse() {
        assert_eq!("json".parse(), Ok(WebhookFormat::Json));
        assert_eq!("slack".parse(), Ok(WebhookFormat::Slack));
        assert_eq!("discord".parse(), Ok(WebhookFormat::Discord));
        assert!("Slack".parse::<WebhookFormat>().is_err());
        assert_eq!(WebhookFormat::default(), WebhookFormat::Json);
    }

    #[test]
    fn slack_gets_a_text_message_with_reader_text_escaped() {
        let body = payload(WebhookEvent::Pending).body(WebhookFormat::Slack, "Clinic & co");
        let value: Value = serde_json::from_slice(&body).unwrap();
        let text = value["text"].as_str().unwrap();
        assert_eq!(value.as_object().unwrap().len(), 1, "{value}");
        assert!(
            text.starts_with(
                "[Clinic &amp; co] New comment awaiting moderation on /occupational-therapy/ from Maya &lt;b&gt;@everyone&lt;/b&gt;:\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(">Is it safe &amp; covered? &lt;script&gt;"),
            "{text}"
        );
        assert!(text.ends_with("<https://comments.clinic.example/admin#comment-42|Open the queue>"));
        // The only unescaped angle brackets are the service's own link.
        assert_eq!(text.matches('<').count(), 1, "{text}");
    }

    #[test]
    fn discord_gets_content_with_markdown_escaped_and_no_mentions() {
        let mut event = payload(WebhookEvent::Approved);
        event.comment.public.name = "**Maya** @everyone [x](https://evil.example)".into();
        let value: Value =
            serde_json::from_slice(&event.body(WebhookFormat::Discord, "Clinic blog")).unwrap();
        assert_eq!(value["allowed_mentions"], json!({"parse": []}));
        let content = value["content"].as_str().unwrap();
        assert!(
            content.starts_with(
                "[Clinic blog] Comment approved on /occupational\\-therapy/ from \\*\\*Maya\\*\\* \\@everyone \\[x\\]\\(https\\:"
            ),
            "{content}"
        );
        assert!(
            content.contains("\n> Is it safe & covered? \\<script\\>"),
            "{content}"
        );
        assert!(content.ends_with("[Open the queue](<https://comments.clinic.example/admin#comment-42>)"));
    }

    #[test]
    fn chat_excerpts_are_plain_text_and_short() {
        assert_eq!(excerpt("<p>a &amp;lt; b</p>\n<p>c&#39;s</p>"), "a &lt; b\nc's");
        let long = format!("<p>{}</p>", "é".repeat(1000));
        let short = excerpt(&long);
        assert_eq!(short.chars().count(), CHAT_EXCERPT_CHARS + 1);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn the_signature_is_hmac_of_timestamp_dot_body_in_hex() {
        let body = br#"{"event":"comment.pending"}"#;
        let header = signature_header(SECRET, T, body);
        // The recipe a receiver follows, written out independently.
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{T}.{}", std::str::from_utf8(body).unwrap()).as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(header, format!("t={T},v1={expected}"));
        assert_eq!(verify(SECRET, &header, body, T + 30, 300), Ok(()));
    }

    #[test]
    fn a_changed_body_timestamp_or_secret_fails_verification() {
        let body = payload(WebhookEvent::Pending).body(WebhookFormat::Json, "x");
        let header = signature_header(SECRET, T, &body);
        let mut changed = body.clone();
        changed[10] ^= 1;
        assert_eq!(
            verify(SECRET, &header, &changed, T, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, &body, T, 300),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace(&format!("t={T}"), &format!("t={}", T + 1));
        assert_eq!(
            verify(SECRET, &moved, &body, T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn an_old_or_future_timestamp_is_refused() {
        let header = signature_header(SECRET, T, b"{}");
        assert_eq!(verify(SECRET, &header, b"{}", T + 300, 300), Ok(()));
        assert_eq!(
            verify(SECRET, &header, b"{}", T + 301, 300),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            verify(SECRET, &header, b"{}", T - 301, 300),
            Err(SignatureError::OutsideTolerance)
        );
    }

    #[test]
    fn any_matching_v1_signature_is_enough_and_unknown_schemes_are_skipped() {
        let header = signature_header(SECRET, T, b"{}");
        let v1 = header.split_once(",v1=").unwrap().1;
        let rotated = format!("t={T},v1={},v0=abc,v1={v1}", "0".repeat(64));
        assert_eq!(verify(SECRET, &rotated, b"{}", T, 300), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=abc,v1=00",
            "t=1,v1=zz",
            "t=1,t=2,v1=00",
            "garbage",
            "t=1;v1=00",
        ] {
            assert_eq!(
                verify(SECRET, bad, b"{}", 1, i64::MAX),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
    }
}
