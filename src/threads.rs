//! The use cases on whole threads: whether one takes new comments, closing
//! and opening it, and moving its comments to another uri (a permalink that
//! changed, or two pages merged). Routes, the submission use case and the
//! importers call these.
//!
//! A thread is closed when a moderator (or an import) closed it, or, when
//! nobody decided either way, once `MARGINALIA_CLOSE_AFTER_DAYS` have passed
//! since its first comment. That rule is computed when a thread is read or
//! written to, from the first comment's date: no job runs, and changing the
//! setting applies at once, both ways. An explicit decision wins over it, so
//! a moderator can reopen an old thread.
//!
//! The state is cached with the thread's pages (`thread_cache`), so a
//! submission usually costs no query for it, and at most one indexed lookup.
//! Every change invalidates the thread before it answers, here and (through
//! the store's announcement) on every other instance. A submission checks
//! the state just before it is stored, not in the same transaction: one
//! that races a close by milliseconds may still be stored, as pending.

use time::OffsetDateTime;

use crate::domain::{ThreadState, ThreadUri};
use crate::state::AppState;
use crate::store::StoreError;

/// Whether `uri` takes comments: from the cache, else from one query (whose
/// answer is cached with the thread's pages).
pub async fn state(app: &AppState, uri: &ThreadUri) -> Result<ThreadState, StoreError> {
    if let Some(state) = app.threads.state(uri.as_str()) {
        return Ok(state);
    }
    let epoch = app.threads.epoch();
    let state = app.store.thread_state(uri, app.close_after.is_some()).await?;
    // Under the age rule, a thread without comments changes by its first
    // one, which (pending) invalidates nothing: not kept, read again.
    let waits_for_first =
        app.close_after.is_some() && state.decided.is_none() && state.first_comment_at.is_none();
    if !waits_for_first {
        app.threads.insert_state(uri.as_str(), state, epoch);
    }
    Ok(state)
}

/// True when `uri` takes no new comments now.
pub async fn is_closed(app: &AppState, uri: &ThreadUri) -> Result<bool, StoreError> {
    Ok(state(app, uri)
        .await?
        .is_closed(app.close_after, OffsetDateTime::now_utc()))
}

/// A moderator closes (`closed`) or opens a thread, with or without
/// comments. Repeating it is harmless. Returns the thread's state now, which
/// is the decision: it wins over the age rule.
pub async fn decide(
    app: &AppState,
    uri: &ThreadUri,
    closed: bool,
    moderator: &str,
) -> Result<bool, StoreError> {
    let changed = app.store.decide_thread(uri, closed, moderator).await?;
    // Before answering: the very next read and submission must see it.
    app.threads.invalidate(uri.as_str());
    if changed {
        let action = if closed { "closed" } else { "opened" };
        tracing::info!(uri = %uri, moderator, "thread {action}");
    }
    Ok(closed)
}

/// A moderator moves every comment of `from` to `to`, merging them into
/// `to`'s own when it has some. Returns how many comments moved (0 when
/// `from` has none: a repeated rename is harmless).
pub async fn rename(
    app: &AppState,
    from: &ThreadUri,
    to: &ThreadUri,
    moderator: &str,
) -> Result<u64, StoreError> {
    let moved = app.store.rename_thread(from, to).await?;
    app.threads.invalidate(from.as_str());
    app.threads.invalidate(to.as_str());
    tracing::info!(from = %from, to = %to, moved, moderator, "thread renamed");
    Ok(moved)
}
