//! The statements of Akismet checks (`akismet_checks`, `comments.akismet`):
//! claiming due checks so that each is made by one instance, recording a
//! verdict (and, for spam, moving the comment with the shared moderation
//! statement), and reading back what the feedback calls send. Written once
//! for both backends (see `store`). The check rows themselves are written
//! with the submission (`store/comments.rs`); the feedback deliveries with
//! the moderation that overrides a verdict (`set_status_in_transaction!`).
//!
//! What Akismet is asked and what its answers mean is `crate::akismet`'s.

use super::{Moderated, Store, StoreError, now};
use crate::domain::{Comment, CommentId, Reasons, Status};

/// The reason a comment Akismet called spam gets (API.md, `reasons`).
pub const REASON_SPAM: &str = "akismet";
/// The reason a comment gets when Akismet gave no answer: it stays queued.
pub const REASON_UNAVAILABLE: &str = "akismet_unavailable";

/// Akismet's verdict on a comment, as `comments.akismet` keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AkismetVerdict {
    /// `comment-check` answered `true`.
    Spam,
    /// `comment-check` answered `false`.
    Ham,
    /// No usable answer after the retries (timeout, an error status,
    /// `invalid`): the comment stays in the queue unjudged.
    Unavailable,
}

impl AkismetVerdict {
    /// The spelling in the column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spam => "spam",
            Self::Ham => "ham",
            Self::Unavailable => "unavailable",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::Spam, Self::Ham, Self::Unavailable]
            .into_iter()
            .find(|verdict| verdict.as_str() == value)
    }
}

/// A check claimed by a worker.
#[derive(Debug, Clone)]
pub struct AkismetCheck {
    pub comment_id: CommentId,
    /// The submission's `Referer`, if it sent one.
    pub referrer: Option<String>,
    /// Claims of this check so far, this one included (an instance that
    /// died mid-check leaves its claim to run out, then another claims it).
    pub attempts: u32,
}

/// A comment with what Akismet was told and answered about it: what a
/// `submit-ham` / `submit-spam` call sends again.
#[derive(Debug, Clone)]
pub struct AkismetRecord {
    pub comment: Comment,
    pub referrer: Option<String>,
    pub verdict: Option<AkismetVerdict>,
}

/// The claim statement with the backend's row lock (see `store/outbox.rs`).
macro_rules! claim_checks_statement {
    ($lock:literal) => {
        concat!(
            "UPDATE akismet_checks SET claimed_until = $1, attempts = attempts + 1 \
             WHERE comment_id IN (SELECT comment_id FROM akismet_checks \
                                  WHERE checked_at IS NULL \
                                    AND (claimed_until IS NULL OR claimed_until <= $2) \
                                  ORDER BY created_at LIMIT $3",
            $lock,
            ") RETURNING comment_id, referrer, attempts"
        )
    };
}

impl Store {
    /// Claims up to `limit` checks that are due, for `lease`: no other
    /// worker takes them until it ends.
    pub async fn claim_akismet_checks(
        &self,
        limit: u32,
        lease: time::Duration,
    ) -> Result<Vec<AkismetCheck>, StoreError> {
        let now = now();
        let sql = match self {
            Store::Sqlite(_) => claim_checks_statement!(""),
            Store::Postgres(_) => claim_checks_statement!(" FOR UPDATE SKIP LOCKED"),
        };
        let rows: Vec<(CommentId, Option<String>, i32)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(now + lease)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        let mut checks: Vec<AkismetCheck> = rows
            .into_iter()
            .map(|(comment_id, referrer, attempts)| AkismetCheck {
                comment_id,
                referrer,
                attempts: u32::try_from(attempts).unwrap_or(0),
            })
            .collect();
        checks.sort_by_key(|check| check.comment_id);
        Ok(checks)
    }

    /// Takes back every claim on checks, so all of them are due now. Only
    /// for a store one process uses (SQLite), when it starts.
    pub async fn release_akismet_claims(&self) -> Result<u64, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE akismet_checks SET claimed_until = NULL \
             WHERE checked_at IS NULL AND claimed_until IS NOT NULL",
        )
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
    }

    /// Records Akismet's verdict on a comment, in one transaction: the check
    /// is done, the verdict kept on the comment, and, on a comment still
    /// pending, `Spam` adds the reason `akismet` and moves it to spam through
    /// the shared moderation statement (as `moderator`), with its event for
    /// the outbox, while `Unavailable` adds `akismet_unavailable` (it stays).
    /// The submission's own event is then dropped if no dispatcher holds it
    /// yet: a mail asking moderators to look at spam is noise (the spam
    /// event tells webhooks). A comment a moderator decided on meanwhile
    /// keeps that decision. Returns the move, if there was one.
    pub async fn record_akismet_verdict(
        &self,
        comment_id: CommentId,
        verdict: AkismetVerdict,
        moderator: &str,
    ) -> Result<Option<Moderated>, StoreError> {
        let now = now();
        in_transaction!(self, |backend, connection| {
            let done = sqlx::query(
                "UPDATE akismet_checks SET checked_at = $2, claimed_until = NULL \
                 WHERE comment_id = $1 AND checked_at IS NULL",
            )
            .bind(comment_id)
            .bind(now)
            .execute(&mut *connection)
            .await?
            .rows_affected();
            if done == 0 {
                // Recorded by another instance (its lease ran out), or the
                // comment was deleted.
                return Ok(None);
            }
            // The update locks the row (PostgreSQL) until the commit, so the
            // status read here is the one the move below replaces.
            let row: Option<(String, String)> =
                sqlx::query_as("UPDATE comments SET akismet = $2 WHERE id = $1 RETURNING status, reasons")
                    .bind(comment_id)
                    .bind(verdict.as_str())
                    .fetch_optional(&mut *connection)
                    .await?;
            let Some((status, reasons)) = row else {
                return Ok(None);
            };
            // Only a comment still in the queue is Akismet's to decide on
            // (or to explain): one a moderator decided keeps that decision.
            let reason = match verdict {
                AkismetVerdict::Spam => REASON_SPAM,
                AkismetVerdict::Unavailable => REASON_UNAVAILABLE,
                AkismetVerdict::Ham => return Ok(None),
            };
            if status != Status::Pending.as_str() {
                return Ok(None);
            }
            let mut reasons = Reasons::try_from(reasons).unwrap_or_default();
            if !reasons.iter().any(|known| known == reason) {
                reasons.0.push(reason.to_owned());
            }
            sqlx::query("UPDATE comments SET reasons = $2 WHERE id = $1")
                .bind(comment_id)
                .bind(reasons.to_json())
                .execute(&mut *connection)
                .await?;
            if verdict != AkismetVerdict::Spam {
                return Ok(None);
            }
            let moved =
                set_status_in_transaction!(backend, connection, comment_id, Status::Spam, moderator, now);
            sqlx::query(
                "DELETE FROM notification_events WHERE comment_id = $1 AND submitted AND claim IS NULL",
            )
            .bind(comment_id)
            .execute(&mut *connection)
            .await?;
            Ok(moved)
        })
    }

    /// A comment with its referrer and Akismet's verdict; `None` when it is gone.
    pub async fn akismet_record(&self, comment_id: CommentId) -> Result<Option<AkismetRecord>, StoreError> {
        let Some(comment) = self.comment(comment_id).await? else {
            return Ok(None);
        };
        let row: Option<(Option<String>, Option<String>)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT c.akismet, k.referrer FROM comments c \
             LEFT JOIN akismet_checks k ON k.comment_id = c.id WHERE c.id = $1",
        )
        .bind(comment_id)
        .fetch_optional(pool)
        .await)?;
        let Some((verdict, referrer)) = row else {
            return Ok(None);
        };
        Ok(Some(AkismetRecord {
            comment,
            referrer,
            verdict: verdict.as_deref().and_then(AkismetVerdict::parse),
        }))
    }
}
