//! The comment records: what a submission holds, what the store returns, and
//! the public view of it that is safe to publish.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AuthorName, CommentBody, Email, LanguageTag, Status, ThreadUri, Website};

/// A comment's id, as the API shows it.
pub type CommentId = i64;

/// A validated submission, ready to be stored as `pending`.
#[derive(Debug, Clone)]
pub struct NewComment {
    pub uri: ThreadUri,
    pub parent_id: Option<CommentId>,
    pub name: AuthorName,
    pub email: Email,
    pub website: Option<Website>,
    pub body: CommentBody,
    /// The client address the rate limiter saw, for moderators.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The reader asked for mail when a reply to this comment is published
    /// (double opt-in: a confirmation mail comes first).
    pub wants_replies: bool,
    /// The language of the page the reader commented on (`lang`), for the
    /// mail they get.
    pub lang: Option<LanguageTag>,
    /// The submission's `Referer` header, for Akismet (its `referrer`);
    /// kept only with the comment's Akismet check, not on the comment.
    pub referrer: Option<String>,
}

/// A comment brought in from another system (or from our own export) by an
/// importer: every part already went through the same parsers as a
/// submission, and it keeps the status and dates its source gave it.
#[derive(Debug, Clone)]
pub struct ImportedComment {
    /// Where it came from, unique per source (`wxr:<post>:<comment>`): a
    /// second import of the same file finds it and adds nothing.
    pub source_id: String,
    /// Another name replies in the same file use for it (in our own export,
    /// replies name their parent by its id in the file), if any.
    pub alias: Option<String>,
    /// The source id (or alias) of the comment it answers. Linked once the
    /// whole file is in, so a reply may come before its parent.
    pub parent: Option<String>,
    pub uri: ThreadUri,
    pub name: AuthorName,
    pub email: Email,
    pub website: Option<Website>,
    pub body: CommentBody,
    pub status: Status,
    pub created_at: OffsetDateTime,
    pub moderated_at: Option<OffsetDateTime>,
    pub moderated_by: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The learning filter's score and clues where it was scored (our own
    /// export); `None` and empty from other systems.
    pub spam_score: Option<f64>,
    pub spam_clues: SpamClues,
}

/// A stored comment with everything a moderator sees.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Comment {
    pub id: CommentId,
    pub uri: String,
    pub parent_id: Option<CommentId>,
    pub name: String,
    pub email: String,
    pub website: Option<String>,
    pub body: String,
    pub body_html: String,
    #[sqlx(try_from = "String")]
    pub status: Status,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub moderated_at: Option<OffsetDateTime>,
    pub moderated_by: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The language of the reader's page, a BCP 47 tag, when the
    /// submission said. `default`: snapshots written before the column
    /// existed have no such field.
    #[serde(default)]
    pub lang: Option<String>,
    /// Why an automatic decision was made, or why the comment was held
    /// (`honeypot`, `links:3`, `blocked_word:casino`); empty for none.
    #[serde(default)]
    #[sqlx(try_from = "String")]
    pub reasons: Reasons,
    /// The learning filter's spam probability; `None` when it did not
    /// score the comment (it had learned nothing yet, or the comment came
    /// from an import).
    #[serde(default)]
    pub spam_score: Option<f64>,
    /// The tokens that weighed most in `spam_score` (moderators only).
    #[serde(default)]
    #[sqlx(try_from = "String")]
    pub spam_clues: SpamClues,
}

/// The reasons of a comment: a JSON array of strings in the database, an
/// array in the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reasons(pub Vec<String>);

impl Reasons {
    /// The stored form, a JSON array.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }
}

impl TryFrom<String> for Reasons {
    type Error = serde_json::Error;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&stored).map(Reasons)
    }
}

impl std::ops::Deref for Reasons {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

/// A token that weighed in a comment's spam score, with its own spam
/// probability (near 1: says spam; near 0: says not spam), as the filter
/// saw it when the comment arrived. Tokens are the filter's: words and word
/// pairs of the body, `name:…`, `email:DOMAIN` (never the address itself),
/// `site:…`, `url:…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpamClue {
    pub token: String,
    pub probability: f64,
}

/// The clues of a comment, strongest first: a JSON array in the database
/// and in the moderator API; empty when the comment was not scored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpamClues(pub Vec<SpamClue>);

impl SpamClues {
    /// The stored form, a JSON array.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".into())
    }
}

impl TryFrom<String> for SpamClues {
    type Error = serde_json::Error;

    fn try_from(stored: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&stored).map(SpamClues)
    }
}

/// What the public sees of an approved comment. It has no email, IP or user
/// agent field at all, so no code path can publish them through this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PublicComment {
    pub id: CommentId,
    /// Null unless the parent is itself published.
    pub parent_id: Option<CommentId>,
    pub name: String,
    pub website: Option<String>,
    pub body_html: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Comment {
    /// True when this stored row holds exactly this submission.
    pub fn is_stored_form_of(&self, submission: &NewComment) -> bool {
        self.uri == submission.uri.as_str()
            && self.parent_id == submission.parent_id
            && self.name == submission.name.as_str()
            && self.email == submission.email.as_str()
            && self.website.as_deref() == submission.website.as_ref().map(|w| w.as_str())
            && self.body == submission.body.markdown()
            && self.ip == submission.ip
            && self.user_agent == submission.user_agent
            && self.lang.as_deref() == submission.lang.as_ref().map(LanguageTag::as_str)
    }

    /// The public view of this comment. `parent_published` says whether its
    /// parent is approved, because a public `parent_id` must name a published comment.
    pub fn to_public(&self, parent_published: bool) -> PublicComment {
        PublicComment {
            id: self.id,
            parent_id: self.parent_id.filter(|_| parent_published),
            name: self.name.clone(),
            website: self.website.clone(),
            body_html: self.body_html.clone(),
            created_at: self.created_at,
        }
    }
}
