//! The statements about threads as a whole: whether one takes new comments
//! (the `threads` table holds moderators' and imports' decisions; the age
//! rule reads the first comment's date), and moving a thread's comments to
//! another uri. Each is written once for both backends (see the module
//! header of `store`); every change announces the threads it touched, so
//! other instances drop their cached copies (`LISTEN/NOTIFY` on PostgreSQL).

use time::OffsetDateTime;

use super::{Store, StoreError, now};
use crate::domain::{ThreadState, ThreadUri};

/// Records a decision about a thread, or changes it; a repeat (the same
/// decision again) writes nothing, so `decided_at` and `decided_by` keep
/// saying who decided first.
const DECIDE: &str = "INSERT INTO threads (uri, closed, decided_at, decided_by) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (uri) DO UPDATE SET closed = excluded.closed, decided_at = excluded.decided_at, \
     decided_by = excluded.decided_by WHERE threads.closed <> excluded.closed";

/// Closes a thread on which nobody has decided yet: what an import does, so
/// importing a file again never closes a thread a moderator has reopened.
pub(super) const CLOSE_UNDECIDED: &str = "INSERT INTO threads (uri, closed, decided_at, decided_by) \
     VALUES ($1, TRUE, $2, $3) ON CONFLICT (uri) DO NOTHING";

/// The row of [`Store::thread_state`].
#[derive(sqlx::FromRow)]
struct StateRow {
    decided: Option<bool>,
    first_comment_at: Option<OffsetDateTime>,
}

impl Store {
    /// What decides whether `uri` takes comments: the decision on it, and,
    /// when `with_age` (an age rule is configured), its first comment's date.
    /// One statement: a primary-key lookup, plus one step of the
    /// `comments_first` index with the age rule.
    pub async fn thread_state(&self, uri: &ThreadUri, with_age: bool) -> Result<ThreadState, StoreError> {
        let sql = if with_age {
            "SELECT (SELECT closed FROM threads WHERE uri = $1) AS decided, \
                    (SELECT MIN(created_at) FROM comments WHERE uri = $1) AS first_comment_at"
        } else {
            "SELECT (SELECT closed FROM threads WHERE uri = $1) AS decided, \
                    NULL AS first_comment_at"
        };
        let row = on_pool!(self, pool => sqlx::query_as::<_, StateRow>(sql)
            .bind(uri.as_str())
            .fetch_one(pool)
            .await)?;
        Ok(ThreadState {
            decided: row.decided,
            first_comment_at: row.first_comment_at,
        })
    }

    /// Closes (`closed`) or opens a thread by `moderator`'s decision; it
    /// need not have comments. Returns whether anything changed (a repeat
    /// changes nothing). Every instance is told in the same transaction.
    pub async fn decide_thread(
        &self,
        uri: &ThreadUri,
        closed: bool,
        moderator: &str,
    ) -> Result<bool, StoreError> {
        let now = now();
        in_transaction!(self, |backend, connection| {
            let changed = sqlx::query(DECIDE)
                .bind(uri.as_str())
                .bind(closed)
                .bind(now)
                .bind(moderator)
                .execute(&mut *connection)
                .await?
                .rows_affected()
                > 0;
            if changed {
                backend.announce_thread_change(connection, uri.as_str()).await?;
            }
            Ok(changed)
        })
    }

    /// Moves every comment of `from` to `to` (merging them into `to`'s own,
    /// which keep their place: threads are ordered by id), with the reply
    /// subscriptions that name the thread. Ids, parents, statuses and
    /// source ids stay as they were. The decision on `to` stands if it has
    /// one; otherwise `from`'s follows it. Returns how many comments moved.
    pub async fn rename_thread(&self, from: &ThreadUri, to: &ThreadUri) -> Result<u64, StoreError> {
        // IMMEDIATE: SQLite's write lock first, so no submission to `from`
        // commits between the moves and is left behind.
        in_transaction!(self, sqlite_begin: "BEGIN IMMEDIATE", |backend, connection| {
            let moved = sqlx::query("UPDATE comments SET uri = $2 WHERE uri = $1")
                .bind(from.as_str())
                .bind(to.as_str())
                .execute(&mut *connection)
                .await?
                .rows_affected();
            sqlx::query("UPDATE subscriptions SET uri = $2 WHERE uri = $1")
                .bind(from.as_str())
                .bind(to.as_str())
                .execute(&mut *connection)
                .await?;
            // `WHERE` also keeps SQLite from reading `ON` as a join's.
            sqlx::query(
                "INSERT INTO threads (uri, closed, decided_at, decided_by) \
                 SELECT $2, closed, decided_at, decided_by FROM threads WHERE uri = $1 \
                 ON CONFLICT (uri) DO NOTHING",
            )
            .bind(from.as_str())
            .bind(to.as_str())
            .execute(&mut *connection)
            .await?;
            sqlx::query("DELETE FROM threads WHERE uri = $1")
                .bind(from.as_str())
                .execute(&mut *connection)
                .await?;
            // In a fixed order, like the submission batches, so concurrent
            // renames cannot deadlock on the two version rows.
            let (first, second) = if from.as_str() < to.as_str() { (from, to) } else { (to, from) };
            backend.announce_thread_change(connection, first.as_str()).await?;
            backend.announce_thread_change(connection, second.as_str()).await?;
            Ok(moved)
        })
    }
}
