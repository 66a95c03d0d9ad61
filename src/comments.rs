//! The use cases on comments: submit, moderate, delete, import. Routes call these
//! after translating HTTP into typed values, and turn the outcome back into
//! HTTP; the CLI and the importers call them too. Each function owns the order
//! of its steps (limit → decide the status → store → invalidate caches →
//! count → log), so the v2 features (moderation rules, the spam filter, the
//! notification outbox) each have one place to join.
//!
//! Nothing here knows about HTTP: outcomes are [`CommentError`], which the
//! HTTP layer maps onto statuses (`error.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use crate::classifier::{self, Document, Label, Model, Score};
use crate::domain::{Comment, CommentId, ImportedComment, NewComment, Reasons, SpamClue, SpamClues, Status};
use crate::rate_limit::Refusal;
use crate::spam::known_authors::Answer as KnownAnswer;
use crate::spam::{self, Context, Decision, FormAge, ModerationMode, ModerationRules, Submission};
use crate::state::AppState;
use crate::store::{Admission, ImportLinks, ImportSession, Inserted, Moderated, StoreError};
use crate::threads;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    /// The client submitted more than its limit allows.
    #[error("too many submissions; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    /// A reply must answer an approved comment of its own thread.
    #[error("must be an approved comment on the same page")]
    ParentNotApproved,
    /// The thread takes no new comments (see `threads`).
    #[error("Comments are closed.")]
    Closed,
    /// No comment has this id (it never existed, or was deleted).
    #[error("no comment with id {0}")]
    NotFound(CommentId),
    /// The same email already said the same body on the same page.
    #[error("You have already said that.")]
    Duplicate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the form said about a submission besides its fields: the honeypot
/// and the form token (see `spam`). Clients other than the widget and the
/// form send neither.
#[derive(Debug, Clone, Default)]
pub struct FormSignals {
    /// The honeypot field was sent non-empty.
    pub honeypot: bool,
    /// `form_token` as sent, if at all.
    pub form_token: Option<String>,
}

/// A reader submits a validated comment from `client`. Returns the stored
/// comment with the status the moderation rules gave it.
pub async fn submit(
    state: &AppState,
    client: IpAddr,
    comment: NewComment,
    signals: FormSignals,
) -> Result<Comment, CommentError> {
    // Before the limit: a comment that cannot be stored does not count.
    if threads::is_closed(state, &comment.uri).await? {
        return Err(CommentError::Closed);
    }
    // Limited after validation (the caller parsed already): a reader fixing a
    // typo is not punished, while every submission that would be stored counts.
    match state.submissions.check(client).await {
        Ok(()) => {}
        Err(Refusal::Limited { retry_after_secs }) => {
            state.metrics.rate_limited("submit");
            return Err(CommentError::RateLimited { retry_after_secs });
        }
        // The shared limit (PostgreSQL) could not be asked: refused as the
        // store being unavailable, never let through unchecked.
        Err(Refusal::Unchecked(error)) => return Err(CommentError::Store(error)),
    }
    let (decision, score) = initial_status(state, &comment, &signals).await?;
    let admission = Admission {
        status: decision.status,
        reasons: Reasons(decision.reasons),
        moderated_by: decision.moderated_by,
        refuse_duplicate: true,
        spam_score: score.as_ref().map(|score| score.probability),
        spam_clues: score.map(clues_of).unwrap_or_default(),
    };
    let stored = match state.inserts.insert(comment, admission).await? {
        Inserted::Stored(comment) => comment,
        Inserted::ParentNotApproved => return Err(CommentError::ParentNotApproved),
        Inserted::Duplicate => return Err(CommentError::Duplicate),
    };
    if stored.status == Status::Approved {
        state.threads.invalidate(&stored.uri);
    }
    state.metrics.comment_submitted();
    tracing::info!(
        id = stored.id,
        uri = %stored.uri,
        status = %stored.status,
        reasons = ?stored.reasons.0,
        "comment submitted"
    );
    Ok(stored)
}

/// The status a new comment starts with, and why: the moderation rules
/// (`spam::decide`) over the comment, its form signals, the stored rules
/// (from memory), whether its author is known (in `known` mode only: the
/// in-process set, then one indexed probe when it cannot rule them out) and how long its form was shown; then the learning
/// filter (`spam::filter::judge`) with the comment's score, which comes
/// back too (`None` while the filter has learned nothing).
async fn initial_status(
    state: &AppState,
    comment: &NewComment,
    signals: &FormSignals,
) -> Result<(Decision, Option<Score>), CommentError> {
    let rules = moderation_rules(state).await?;
    // Most authors are certainly unknown by the in-process set; only a
    // "maybe" (or a set not loaded yet) costs the exact query.
    let known_author = rules.moderation == ModerationMode::Known
        && state
            .known_authors
            .check(comment.name.as_str(), comment.email.as_str())
            == KnownAnswer::Maybe
        && state
            .store
            .is_known_author(comment.name.as_str(), comment.email.as_str())
            .await?;
    let form_age = if state.min_form_age.is_zero() {
        FormAge::Missing
    } else {
        state
            .form_tokens
            .age(signals.form_token.as_deref(), time::OffsetDateTime::now_utc())
    };
    let submission = Submission {
        comment,
        honeypot: signals.honeypot,
        form_age,
    };
    let context = Context {
        rules: &rules,
        known_author,
        min_form_age: state.min_form_age,
    };
    let decision = spam::decide(&submission, &context);
    // The in-process copy, never the store: a background task keeps it fresh.
    let model = state.filter.current();
    Ok(match filter_score(&model, comment) {
        Some(score) => {
            let decision = spam::filter::judge(decision, &score, model.is_ready(), state.filter_spam_at);
            (decision, Some(score))
        }
        None => (decision, None),
    })
}

/// The learning filter's score of a new comment, from the same fields its
/// moderation will teach it (`store::learn_from_moderation!`); `None` while
/// it has learned nothing at all (every score would be 0.5, saying nothing).
fn filter_score(model: &Model, comment: &NewComment) -> Option<Score> {
    if model.examples(Label::Spam) == 0 && model.examples(Label::Ham) == 0 {
        return None;
    }
    let tokens = classifier::tokenize(&Document {
        name: comment.name.as_str(),
        email: comment.email.as_str(),
        website: comment.website.as_ref().map(|website| website.as_str()),
        body: comment.body.markdown(),
    });
    Some(model.score(&tokens))
}

/// A score's clues as the comment keeps them, probabilities to four places.
fn clues_of(score: Score) -> SpamClues {
    SpamClues(
        score
            .clues
            .into_iter()
            .map(|clue| SpamClue {
                token: clue.token,
                probability: (clue.probability * 10_000.0).round() / 10_000.0,
            })
            .collect(),
    )
}

/// The moderation rules in force: the in-process copy, else the stored
/// rules (kept as the copy), else the defaults (`MARGINALIA_MODERATION`).
pub async fn moderation_rules(state: &AppState) -> Result<Arc<ModerationRules>, CommentError> {
    if let Some(rules) = state.rules.get() {
        return Ok(rules);
    }
    let epoch = state.rules.epoch();
    let rules = Arc::new(
        state
            .store
            .moderation_rules()
            .await?
            .unwrap_or_else(|| state.rules.defaults()),
    );
    state.rules.fill(rules.clone(), epoch);
    Ok(rules)
}

/// A moderator replaces the moderation rules; every instance applies them
/// from its next submission on (this one at once, others when the change
/// notification arrives, see `spam::RulesCache`).
pub async fn replace_rules(
    state: &AppState,
    rules: ModerationRules,
    moderated_by: &str,
) -> Result<Arc<ModerationRules>, CommentError> {
    state.store.replace_moderation_rules(&rules, moderated_by).await?;
    state.rules.invalidate();
    tracing::info!(
        moderator = %moderated_by,
        moderation = rules.moderation.as_str(),
        hold_links = rules.hold_links,
        held_words = rules.held_words.len(),
        blocked_words = rules.blocked_words.len(),
        "moderation rules replaced"
    );
    moderation_rules(state).await
}

/// A moderator empties the spam folder: every spam comment deleted for
/// good, each recorded as a deletion. Returns how many.
pub async fn empty_spam(state: &AppState, moderated_by: &str) -> Result<u64, CommentError> {
    let deleted = state.store.delete_with_status(Status::Spam).await?;
    tracing::info!(deleted, moderator = %moderated_by, "spam folder emptied");
    Ok(deleted)
}

/// A moderator (`moderated_by`: a token's name, later `email:…` or
/// `auto:<rule>`) sets a comment's status. Repeating an action is harmless and
/// changes nothing, not even who is recorded as having moderated.
pub async fn moderate(
    state: &AppState,
    id: CommentId,
    status: Status,
    moderated_by: &str,
) -> Result<Comment, CommentError> {
    let moderated = state
        .store
        .set_status(id, status, moderated_by)
        .await?
        .ok_or(CommentError::NotFound(id))?;
    after_moderation(state, &moderated, moderated_by);
    Ok(moderated.comment)
}

/// What follows every status change, however it was made (the moderator
/// API, a one-click link, Akismet): the caches (the thread's, the learning
/// filter's, the known authors'), the metrics and the log. `moderator` is what the log says
/// about who did it.
pub(crate) fn after_moderation(state: &AppState, moderated: &Moderated, moderator: &str) {
    if let Some(learned) = &moderated.learned {
        // This instance's next submission is scored with what was just
        // learned; when another change came between (another instance's,
        // or a concurrent one committed first), the background refresh
        // reloads the model instead.
        state.filter.apply(learned.version, &learned.change);
    }
    if moderated.comment.status == Status::Approved {
        // The author is known to their very next comment on this instance
        // (other instances learn it at their next load).
        state
            .known_authors
            .add(&moderated.comment.name, &moderated.comment.email);
    }
    if moderated.changed {
        let (id, status) = (moderated.comment.id, moderated.comment.status);
        // Before answering: the very next public read must show the change.
        state.threads.invalidate(&moderated.comment.uri);
        state.metrics.comment_moderated(status);
        tracing::info!(id, status = %status, moderator, "comment moderated");
    }
}

/// A moderator deletes a comment for good; its replies stay, now top-level.
pub async fn delete(state: &AppState, id: CommentId, moderated_by: &str) -> Result<(), CommentError> {
    let uri = state
        .store
        .delete_comment(id)
        .await?
        .ok_or(CommentError::NotFound(id))?;
    state.threads.invalidate(&uri);
    tracing::info!(id, moderator = %moderated_by, "comment deleted");
    Ok(())
}

/// Brings a batch of comments in from another system (or our own export),
/// inside the import's transaction: each with the status, dates, IP, user
/// agent and source id its source gave it. Unlike a submission it is not
/// rate-limited, not queued for moderation and records no notification
/// event: nobody is mailed about comments written long ago. A comment whose
/// source id is already stored is left as it is, so importing a file twice
/// adds nothing. Returns the status of each comment stored now.
pub async fn import(
    session: &mut ImportSession,
    batch: &[ImportedComment],
) -> Result<Vec<Status>, CommentError> {
    Ok(session.insert(batch).await?)
}

/// Ends an import: links replies to their parents (any order in the file),
/// tells other instances which threads changed, and commits; or, for a dry
/// run (`commit` false), rolls every row back.
pub async fn finish_import(session: ImportSession, commit: bool) -> Result<ImportLinks, CommentError> {
    let links = session.finish(commit).await?;
    if commit {
        tracing::info!(unlinked = links.unlinked_count, "import committed");
    }
    Ok(links)
}
