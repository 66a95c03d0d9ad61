//! The statements of the retention job (`src/retention.rs`): clearing the IP
//! address and user agent of old comments, and deleting spam and rejected
//! comments some time after their moderation. Written once for both
//! backends (see `store`); only the lock that keeps instances from running
//! the job together differs (`try_job_lock` in each backend file).

use time::OffsetDateTime;

use super::{Store, StoreError};

/// The key of the PostgreSQL advisory lock the retention job takes: one
/// instance at a time runs it (any fixed number no other lock uses).
pub(super) const RETENTION_LOCK: i64 = 0x6d61_7267_7265_7431;

/// What one step of the retention job changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStep {
    /// Comments whose IP address and user agent were cleared.
    pub ip_cleared: u64,
    /// Spam and rejected comments deleted.
    pub purged: u64,
}

impl Store {
    /// One step of the retention job, in one transaction: clears the IP and
    /// user agent of at most `chunk` comments created before
    /// `clear_ip_before`, and deletes at most `chunk` spam or rejected
    /// comments moderated before `purge_before` (a comment never moderated,
    /// such as one imported as spam, counts from its creation). `None` for
    /// a rule that is off. Bounded, so that no step holds SQLite's write lock
    /// for long; the caller repeats it until a step changes less than a
    /// chunk. `Ok(None)` when another instance is running the job
    /// (PostgreSQL's advisory lock, held until this transaction ends).
    ///
    /// Neither change alters a public thread: IP and user agent are never
    /// shown, and spam and rejected comments are not published (a reply to
    /// one already shows no parent), so no thread is announced.
    pub async fn retention_step(
        &self,
        clear_ip_before: Option<OffsetDateTime>,
        purge_before: Option<OffsetDateTime>,
        chunk: u32,
    ) -> Result<Option<RetentionStep>, StoreError> {
        let chunk = i64::from(chunk);
        in_transaction!(self, sqlite_begin: "BEGIN IMMEDIATE", |backend, connection| {
            if !backend.try_job_lock(connection, RETENTION_LOCK).await? {
                return Ok(None);
            }
            let mut step = RetentionStep::default();
            if let Some(before) = clear_ip_before {
                step.ip_cleared = sqlx::query(
                    "UPDATE comments SET ip = NULL, user_agent = NULL WHERE id IN \
                     (SELECT id FROM comments \
                      WHERE (ip IS NOT NULL OR user_agent IS NOT NULL) AND created_at < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(chunk)
                .execute(&mut *connection)
                .await?
                .rows_affected();
            }
            if let Some(before) = purge_before {
                // Replies to a purged comment stay (the foreign key clears
                // their `parent_id`); its subscription goes with it.
                step.purged = sqlx::query(
                    "DELETE FROM comments WHERE id IN \
                     (SELECT id FROM comments WHERE status IN ('spam', 'rejected') \
                      AND COALESCE(moderated_at, created_at) < $1 LIMIT $2)",
                )
                .bind(before)
                .bind(chunk)
                .execute(&mut *connection)
                .await?
                .rows_affected();
            }
            Ok(Some(step))
        })
    }
}
