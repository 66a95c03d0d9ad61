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

use crate::domain::{Comment, CommentId, ImportedComment, NewComment, Status};
use crate::rate_limit::Refusal;
use crate::state::AppState;
use crate::store::{ImportLinks, ImportSession, Moderated, StoreError};
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A reader submits a validated comment from `client`. Returns the stored
/// comment with the status it was given.
pub async fn submit(state: &AppState, client: IpAddr, comment: NewComment) -> Result<Comment, CommentError> {
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
    let status = initial_status(&comment);
    let stored = state
        .inserts
        .insert(comment, status)
        .await?
        .ok_or(CommentError::ParentNotApproved)?;
    if stored.status == Status::Approved {
        state.threads.invalidate(&stored.uri);
    }
    state.metrics.comment_submitted();
    tracing::info!(id = stored.id, uri = %stored.uri, status = %stored.status, "comment submitted");
    Ok(stored)
}

/// The status a new comment starts with. Pre-moderation: every comment waits
/// for a moderator. The moderation rules and the spam filter decide here.
fn initial_status(_comment: &NewComment) -> Status {
    Status::Pending
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
/// API, a one-click link): the cache, the metrics and the log. `moderator`
/// is what the log says about who did it.
pub(crate) fn after_moderation(state: &AppState, moderated: &Moderated, moderator: &str) {
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
