//! Spam defence: the moderation rules and what they decide about a new
//! submission, each decision with its reasons.
//!
//! Each rule is a small pure function in [`rules`] over the submission
//! ([`Submission`]) and what is known around it ([`Context`]), returning a
//! [`Verdict`] (a status, the reasons, the rule's name) or nothing. [`decide`]
//! combines them in one place: a spam verdict wins over a hold, a hold wins
//! over the known-author shortcut, and otherwise the mode's default applies.
//! The use case `comments::submit` gathers the context (the stored rules,
//! whether the author is known, the form token's age) and stores the decision.
//!
//! Akismet joins after the comment is stored (its reasons are added then) and
//! is not part of this pure pipeline, which runs on the request path and must
//! stay cheap (in-memory checks only). The learning filter does run on the
//! request path, over the in-process copy of its model: [`filter::judge`]
//! takes the rules' decision and the comment's score (see `comments::submit`).
//!
//! Also here: the moderation rules' shape and validation ([`ModerationRules`]),
//! the in-process copy of them ([`RulesCache`]), and the signed form token
//! that tells how long a form was shown ([`form_token`]), and the
//! in-process set that tells most unknown authors apart without a query
//! ([`known_authors`]).
//!
//! Depends on `domain` (the submission), `classifier` (the filter's score) and
//! `notify::links` (the service's signing key) only.

mod cache;
pub mod filter;
pub mod form_token;
pub mod known_authors;
pub mod rules;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{NewComment, Status};

pub use cache::RulesCache;

/// The default of `hold_links`: WordPress's "hold a comment in the queue if
/// it contains 2 or more links".
pub const DEFAULT_HOLD_LINKS: u32 = 2;
/// The largest accepted `hold_links`.
pub const MAX_HOLD_LINKS: u32 = 100;
/// Most words in one list.
pub const MAX_WORDS: usize = 1000;
/// Longest word (or phrase, address, URL fragment), in characters.
pub const MAX_WORD_CHARS: usize = 200;
/// Most reasons of one kind kept on a comment (a body full of blocked words
/// needs no list of all of them).
const MAX_REASONS_PER_KIND: usize = 5;

/// `MARGINALIA_MODERATION`: which comments wait for a moderator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModerationMode {
    /// Every comment waits (pre-moderation), the default.
    #[default]
    All,
    /// A comment whose name and email match an approved comment is published
    /// at once, unless a rule holds it (WordPress's "comment author must have
    /// a previously approved comment").
    Known,
}

impl ModerationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Known => "known",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(Self::All),
            "known" => Some(Self::Known),
            _ => None,
        }
    }
}

/// The rules moderators edit (`GET/PUT /api/admin/rules`, the Rules editor of
/// `/admin`). Built only through [`ModerationRules::new`] or
/// [`ModerationRules::defaults`], so the words are trimmed and non-empty and
/// every bound holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModerationRules {
    pub moderation: ModerationMode,
    /// Hold a comment with this many links or more; 0 turns the rule off.
    pub hold_links: u32,
    /// WordPress's "comment moderation" keys: found anywhere → held.
    pub held_words: Vec<String>,
    /// WordPress's "disallowed comment keys": found anywhere → spam.
    pub blocked_words: Vec<String>,
    /// Lower-cased copies of the words, for case-insensitive matching.
    #[serde(skip)]
    held_lower: Vec<String>,
    #[serde(skip)]
    blocked_lower: Vec<String>,
}

/// What is wrong with proposed rules: field name → message, every field named.
pub type RuleErrors = std::collections::BTreeMap<&'static str, String>;

impl ModerationRules {
    /// The rules before any moderator stored some: the configured mode,
    /// two links, no words.
    pub fn defaults(moderation: ModerationMode) -> Self {
        Self::build(moderation, DEFAULT_HOLD_LINKS, Vec::new(), Vec::new())
    }

    /// Checks proposed rules: `hold_links` within 0..=100, each word trimmed
    /// and then non-empty, at most [`MAX_WORD_CHARS`] characters without
    /// control characters, at most [`MAX_WORDS`] per list. Words repeated
    /// (ignoring case) are kept once.
    pub fn new(
        moderation: ModerationMode,
        hold_links: i64,
        held_words: &[String],
        blocked_words: &[String],
    ) -> Result<Self, RuleErrors> {
        let mut errors = RuleErrors::new();
        if !(0..=i64::from(MAX_HOLD_LINKS)).contains(&hold_links) {
            errors.insert("hold_links", format!("must be between 0 and {MAX_HOLD_LINKS}"));
        }
        let held = clean_words(held_words).map_err(|message| errors.insert("held_words", message));
        let blocked = clean_words(blocked_words).map_err(|message| errors.insert("blocked_words", message));
        match (held, blocked) {
            (Ok(held), Ok(blocked)) if errors.is_empty() => {
                Ok(Self::build(moderation, hold_links as u32, held, blocked))
            }
            _ => Err(errors),
        }
    }

    fn build(moderation: ModerationMode, hold_links: u32, held: Vec<String>, blocked: Vec<String>) -> Self {
        Self {
            moderation,
            hold_links,
            held_lower: held.iter().map(|word| word.to_lowercase()).collect(),
            blocked_lower: blocked.iter().map(|word| word.to_lowercase()).collect(),
            held_words: held,
            blocked_words: blocked,
        }
    }
}

/// Trims every word and checks the list (see [`ModerationRules::new`]).
fn clean_words(words: &[String]) -> Result<Vec<String>, String> {
    if words.len() > MAX_WORDS {
        return Err(format!("must have at most {MAX_WORDS} words"));
    }
    let mut cleaned: Vec<String> = Vec::with_capacity(words.len());
    for word in words {
        let word = word.trim();
        if word.is_empty() {
            return Err("must not contain empty words".into());
        }
        if word.chars().count() > MAX_WORD_CHARS {
            return Err(format!("each word must be at most {MAX_WORD_CHARS} characters"));
        }
        if word.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let lower = word.to_lowercase();
        if !cleaned.iter().any(|kept| kept.to_lowercase() == lower) {
            cleaned.push(word.to_owned());
        }
    }
    Ok(cleaned)
}

/// How long the form was shown before it was sent, from its signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormAge {
    /// No token: an API client, or a form without the widget. Not punished.
    Missing,
    /// A token that does not verify (forged, garbled, from the future, or
    /// signed with a key since rotated): treated as too fast, i.e. held.
    Invalid,
    /// A valid token issued this long ago.
    Shown(Duration),
}

/// A submission as the rules see it: the validated comment and what the
/// form said about its sender.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    pub comment: &'a NewComment,
    /// The honeypot field was filled (people never see it).
    pub honeypot: bool,
    pub form_age: FormAge,
}

/// What the rules need to know besides the submission.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub rules: &'a ModerationRules,
    /// The same name and email have an approved comment (looked up only in
    /// `known` mode; false otherwise).
    pub known_author: bool,
    /// A form sent sooner than this after it was shown is held (`too_fast`).
    pub min_form_age: Duration,
}

/// One rule's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What the rule would make of the comment.
    pub status: Status,
    /// Why, each `KIND` or `KIND:DETAIL` (`blocked_word:casino`).
    pub reasons: Vec<String>,
    /// The rule's name, recorded as `moderated_by = auto:<rule>` when it set
    /// the status.
    pub rule: &'static str,
}

/// What the rules decided for a new comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    pub reasons: Vec<String>,
    /// `auto:<rule>` when a rule set the status away from the queue (spam,
    /// or approved for a known author); `None` for a comment that waits for
    /// a moderator, held or not (its reasons say why it was held).
    pub moderated_by: Option<String>,
}

/// Runs every rule and combines their verdicts: any spam verdict → spam (the
/// first one's rule is recorded); else any hold → pending with every hold's
/// reasons, even in `known` mode; else a known author in `known` mode →
/// approved; else pending.
pub fn decide(submission: &Submission<'_>, context: &Context<'_>) -> Decision {
    let verdicts: Vec<Verdict> = [
        rules::honeypot(submission),
        rules::blocked_words(submission, context),
        rules::held_words(submission, context),
        rules::too_many_links(submission, context),
        rules::too_fast(submission, context),
        rules::known_author(submission, context),
    ]
    .into_iter()
    .flatten()
    .collect();
    let of = |status: Status| verdicts.iter().filter(move |verdict| verdict.status == status);
    if let Some(first) = of(Status::Spam).next() {
        return Decision {
            status: Status::Spam,
            reasons: of(Status::Spam).flat_map(|v| v.reasons.clone()).collect(),
            moderated_by: Some(format!("auto:{}", first.rule)),
        };
    }
    let held: Vec<String> = of(Status::Pending).flat_map(|v| v.reasons.clone()).collect();
    if !held.is_empty() {
        return Decision {
            status: Status::Pending,
            reasons: held,
            moderated_by: None,
        };
    }
    if let Some(known) = of(Status::Approved).next() {
        return Decision {
            status: Status::Approved,
            reasons: known.reasons.clone(),
            moderated_by: Some(format!("auto:{}", known.rule)),
        };
    }
    Decision {
        status: Status::Pending,
        reasons: Vec::new(),
        moderated_by: None,
    }
}

/// Keeps at most [`MAX_REASONS_PER_KIND`] reasons.
fn capped(reasons: impl Iterator<Item = String>) -> Vec<String> {
    reasons.take(MAX_REASONS_PER_KIND).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_trimmed_deduplicated_and_bounded() {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let rules = ModerationRules::new(
            ModerationMode::Known,
            3,
            &words(&[" Viagra ", "viagra", "cheap pills"]),
            &words(&["casino"]),
        )
        .unwrap();
        assert_eq!(rules.held_words, ["Viagra", "cheap pills"]);
        assert_eq!(rules.blocked_words, ["casino"]);

        let errors =
            ModerationRules::new(ModerationMode::All, 101, &words(&["  "]), &words(&["a\u{7}"])).unwrap_err();
        assert_eq!(
            errors.keys().copied().collect::<Vec<_>>(),
            ["blocked_words", "held_words", "hold_links"]
        );
        assert!(ModerationRules::new(ModerationMode::All, -1, &[], &[]).is_err());
        assert!(ModerationRules::new(ModerationMode::All, 0, &[], &[]).is_ok());
        let many = vec!["w".to_owned(); MAX_WORDS + 1];
        assert!(ModerationRules::new(ModerationMode::All, 2, &many, &[]).is_err());
        let long = vec!["x".repeat(MAX_WORD_CHARS + 1)];
        assert!(ModerationRules::new(ModerationMode::All, 2, &[], &long).is_err());
    }

    #[test]
    fn modes_spell_as_the_contract_says() {
        for mode in [ModerationMode::All, ModerationMode::Known] {
            assert_eq!(ModerationMode::parse(mode.as_str()), Some(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
        }
        assert_eq!(ModerationMode::parse("ALL"), None);
    }
}
