//! The rules, one pure function each: a submission and its context in, a
//! [`Verdict`] out when the rule has something to say. They read nothing
//! and write nothing, so each is tested on its own (here, and as properties
//! in `tests/properties.rs`); [`super::decide`] combines them.

use super::{Context, FormAge, Submission, Verdict, capped};
use crate::domain::{NewComment, Status};

/// Blocked words (WordPress's "disallowed comment keys"): a word found, case
/// ignored, in the name, email, website, body, IP or user agent → spam, with
/// `blocked_word:<word>` for each word found.
pub fn blocked_words(submission: &Submission<'_>, context: &Context<'_>) -> Option<Verdict> {
    let rules = context.rules;
    let found = words_found(submission.comment, &rules.blocked_words, &rules.blocked_lower);
    (!found.is_empty()).then(|| Verdict {
        status: Status::Spam,
        reasons: capped(found.into_iter().map(|word| format!("blocked_word:{word}"))),
        rule: "blocked-word",
    })
}

/// Held words (WordPress's "comment moderation" keys): a word found, as for
/// blocked words → held for a moderator, with `held_word:<word>`.
pub fn held_words(submission: &Submission<'_>, context: &Context<'_>) -> Option<Verdict> {
    let rules = context.rules;
    let found = words_found(submission.comment, &rules.held_words, &rules.held_lower);
    (!found.is_empty()).then(|| Verdict {
        status: Status::Pending,
        reasons: capped(found.into_iter().map(|word| format!("held_word:{word}"))),
        rule: "held-word",
    })
}

/// `hold_links` links or more in the body → held, with `links:N`. 0 turns
/// the rule off (as in WordPress).
pub fn too_many_links(submission: &Submission<'_>, context: &Context<'_>) -> Option<Verdict> {
    let limit = context.rules.hold_links;
    let links = count_links(submission.comment.body.html());
    (limit > 0 && links >= limit as usize).then(|| Verdict {
        status: Status::Pending,
        reasons: vec![format!("links:{links}")],
        rule: "links",
    })
}

/// The honeypot field was filled: people never see it, so a bot did → spam.
pub fn honeypot(submission: &Submission<'_>) -> Option<Verdict> {
    submission.honeypot.then(|| Verdict {
        status: Status::Spam,
        reasons: vec!["honeypot".into()],
        rule: "honeypot",
    })
}

/// The form was sent less than the minimum after it was shown, or with a
/// token that does not verify → held, with `too_fast`. No token at all (an
/// API client) is not held for that alone.
pub fn too_fast(submission: &Submission<'_>, context: &Context<'_>) -> Option<Verdict> {
    let fast = match submission.form_age {
        FormAge::Missing => false,
        FormAge::Invalid => true,
        FormAge::Shown(age) => age < context.min_form_age,
    };
    fast.then(|| Verdict {
        status: Status::Pending,
        reasons: vec!["too_fast".into()],
        rule: "too-fast",
    })
}

/// In `known` mode, an author whose name and email match an approved
/// comment → approved, with `known_author` (unless another rule holds it;
/// see [`super::decide`]).
pub fn known_author(submission: &Submission<'_>, context: &Context<'_>) -> Option<Verdict> {
    let _ = submission;
    (context.rules.moderation == super::ModerationMode::Known && context.known_author).then(|| Verdict {
        status: Status::Approved,
        reasons: vec!["known_author".into()],
        rule: "known-author",
    })
}

/// The configured words (as written) that occur in any field of the
/// comment, case ignored. `lower` holds the same words lower-cased.
fn words_found<'w>(comment: &NewComment, words: &'w [String], lower: &[String]) -> Vec<&'w str> {
    if words.is_empty() {
        return Vec::new();
    }
    let fields: Vec<String> = [
        Some(comment.name.as_str()),
        Some(comment.email.as_str()),
        comment.website.as_ref().map(|website| website.as_str()),
        Some(comment.body.markdown()),
        comment.ip.as_deref(),
        comment.user_agent.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::to_lowercase)
    .collect();
    words
        .iter()
        .zip(lower)
        .filter(|(_, needle)| fields.iter().any(|field| field.contains(needle.as_str())))
        .map(|(word, _)| word.as_str())
        .collect()
}

/// The links in a rendered, sanitized body: every anchor with an `href`,
/// plus every bare `http://`, `https://` or `www.` address in the text
/// outside anchors (Markdown does not turn those into anchors, yet readers
/// copy them, so they count as WordPress counts them).
pub fn count_links(html: &str) -> usize {
    let lower = html.to_ascii_lowercase();
    let mut links = 0;
    let mut outside = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    while let Some(start) = rest.find("<a") {
        let after = &rest[start + 2..];
        // `<abbr>` and such are no anchors (and never survive sanitizing).
        if !after.starts_with([' ', '>']) {
            outside.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        outside.push_str(&rest[..start]);
        let tag_end = after.find('>').map_or(after.len(), |end| end + 1);
        if after[..tag_end].contains("href=") {
            links += 1;
        }
        // Skip the anchor's text: its address is the anchor.
        rest = match after.find("</a>") {
            Some(close) => &after[close + 4..],
            None => "",
        };
    }
    outside.push_str(rest);
    links + bare_addresses(&outside)
}

/// Bare addresses in text: each `http://`, `https://` or a `www.` that
/// starts a word.
fn bare_addresses(text: &str) -> usize {
    let schemes = text.matches("http://").count() + text.matches("https://").count();
    let www = text
        .match_indices("www.")
        .filter(|(index, _)| {
            let before = text[..*index].chars().next_back();
            // `https://www.…` is already counted by its scheme.
            before.is_none_or(|c| !(c.is_alphanumeric() || c == '/' || c == '.' || c == '-'))
        })
        .count();
    schemes + www
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{AuthorName, CommentBody, Email, ThreadUri, Website};
    use crate::spam::{ModerationMode, ModerationRules, decide};

    fn comment(body: &str) -> NewComment {
        NewComment {
            uri: ThreadUri::parse("/p/").unwrap(),
            parent_id: None,
            name: AuthorName::parse("Ada").unwrap(),
            email: Email::parse("ada@example.org").unwrap(),
            website: Some(Website::parse_optional("https://ada.example").unwrap().unwrap()),
            body: CommentBody::parse(body).unwrap(),
            ip: Some("192.0.2.7".into()),
            user_agent: Some("Mozilla/5.0 Test".into()),
            wants_replies: false,
            lang: None,
            referrer: None,
        }
    }

    fn rules(mode: ModerationMode, held: &[&str], blocked: &[&str]) -> ModerationRules {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        ModerationRules::new(mode, 2, &words(held), &words(blocked)).unwrap()
    }

    fn context(rules: &ModerationRules) -> Context<'_> {
        Context {
            rules,
            known_author: false,
            min_form_age: Duration::from_secs(3),
        }
    }

    fn submission(comment: &NewComment) -> Submission<'_> {
        Submission {
            comment,
            honeypot: false,
            form_age: FormAge::Missing,
        }
    }

    #[test]
    fn a_blocked_word_in_any_field_is_spam_whatever_its_case() {
        let c = comment("Hello there");
        let rules_for = |word: &str| rules(ModerationMode::All, &[], &[word]);
        for word in [
            "ADA",
            "EXAMPLE.ORG",
            "ada.example",
            "hello",
            "192.0.2.",
            "mozilla",
        ] {
            let rules = rules_for(word);
            let verdict = blocked_words(&submission(&c), &context(&rules)).expect(word);
            assert_eq!(verdict.status, Status::Spam);
            assert_eq!(verdict.reasons, [format!("blocked_word:{word}")]);
        }
        let rules = rules_for("casino");
        assert_eq!(blocked_words(&submission(&c), &context(&rules)), None);
    }

    #[test]
    fn held_words_hold_and_name_each_word() {
        let c = comment("cheap Pills and more");
        let rules = rules(ModerationMode::All, &["pills", "cheap", "absent"], &[]);
        let verdict = held_words(&submission(&c), &context(&rules)).unwrap();
        assert_eq!(verdict.status, Status::Pending);
        assert_eq!(verdict.reasons, ["held_word:pills", "held_word:cheap"]);
    }

    #[test]
    fn links_are_counted_after_rendering() {
        let count = |body: &str| count_links(CommentBody::parse(body).unwrap().html());
        assert_eq!(count("no links here"), 0);
        assert_eq!(count("[one](https://a.example)"), 1);
        assert_eq!(count("<https://a.example> and [b](http://b.example)"), 2);
        assert_eq!(count("bare https://a.example and www.b.example"), 2);
        assert_eq!(count("[https://a.example](https://a.example)"), 1);
        assert_eq!(count("[relative](/x) loses its href"), 0);
        assert_eq!(count("https://www.a.example counts once"), 1);
        assert_eq!(count("[a](mailto:x@example.org)"), 1);
    }

    #[test]
    fn two_links_hold_and_zero_turns_the_rule_off() {
        let c = comment("[a](https://a.example) [b](https://b.example)");
        let two = rules(ModerationMode::All, &[], &[]);
        let verdict = too_many_links(&submission(&c), &context(&two)).unwrap();
        assert_eq!(verdict.reasons, ["links:2"]);
        let off = ModerationRules::new(ModerationMode::All, 0, &[], &[]).unwrap();
        assert_eq!(too_many_links(&submission(&c), &context(&off)), None);
        let one = comment("[a](https://a.example)");
        assert_eq!(too_many_links(&submission(&one), &context(&two)), None);
    }

    #[test]
    fn the_form_age_decides_too_fast_and_a_missing_token_is_not_punished() {
        let c = comment("hi");
        let rules = rules(ModerationMode::All, &[], &[]);
        let with = |form_age| Submission {
            form_age,
            ..submission(&c)
        };
        let ctx = context(&rules);
        assert!(too_fast(&with(FormAge::Shown(Duration::from_millis(2999))), &ctx).is_some());
        assert!(too_fast(&with(FormAge::Shown(Duration::from_secs(3))), &ctx).is_none());
        assert!(too_fast(&with(FormAge::Invalid), &ctx).is_some());
        assert!(too_fast(&with(FormAge::Missing), &ctx).is_none());
    }

    #[test]
    fn spam_beats_holds_and_holds_beat_a_known_author() {
        let c = comment("[a](https://a.example) [b](https://b.example)");
        let known = rules(ModerationMode::Known, &[], &[]);
        let ctx = Context {
            known_author: true,
            ..context(&known)
        };
        let held = decide(&submission(&c), &ctx);
        assert_eq!(held.status, Status::Pending);
        assert_eq!(held.reasons, ["links:2"]);
        assert_eq!(held.moderated_by, None);

        let plain = comment("hello");
        let approved = decide(&submission(&plain), &ctx);
        assert_eq!(approved.status, Status::Approved);
        assert_eq!(approved.reasons, ["known_author"]);
        assert_eq!(approved.moderated_by.as_deref(), Some("auto:known-author"));

        let trap = Submission {
            honeypot: true,
            ..submission(&c)
        };
        let spam = decide(&trap, &ctx);
        assert_eq!(spam.status, Status::Spam);
        assert_eq!(spam.reasons, ["honeypot"]);
        assert_eq!(spam.moderated_by.as_deref(), Some("auto:honeypot"));

        // `all` mode: a known author still waits.
        let all = rules(ModerationMode::All, &[], &[]);
        let ctx = Context {
            known_author: true,
            ..context(&all)
        };
        let waits = decide(&submission(&plain), &ctx);
        assert_eq!(waits.status, Status::Pending);
        assert!(waits.reasons.is_empty());
    }
}
