//! The statements of the retention job (`src/retention.rs`): clearing the IP
//! address and user agent of old comments, and deleting spam and rejected
//! comments some time after their moderation. Written once for both
//! backends (see `store`); only PostgreSQL takes a lock, which keeps its
//! instances from running the job together (`try_job_lock`).

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

/// Clears the IP and user agent of at most `$2` comments created before `$1`.
const CLEAR_IP: &str = "UPDATE comments SET ip = NULL, user_agent = NULL WHERE id IN \
     (SELECT id FROM comments \
      WHERE (ip IS NOT NULL OR user_agent IS NOT NULL) AND created_at < $1 LIMIT $2)";

/// Deletes at most `$2` spam or rejected comments moderated (or, never
/// moderated, created) before `$1`. Replies to a purged comment stay (the
/// foreign key clears their `parent_id`); its subscription goes with it.
const PURGE: &str = "DELETE FROM comments WHERE id IN \
     (SELECT id FROM comments WHERE status IN ('spam', 'rejected') \
      AND COALESCE(moderated_at, created_at) < $1 LIMIT $2)";

/// Runs both rules with `$executor` (evaluated once per statement); a
/// `Result<RetentionStep, sqlx::Error>`. A macro because it expands once per
/// backend's executor type (see `in_transaction!`).
macro_rules! retention_statements {
    ($executor:expr, $clear_ip_before:expr, $purge_before:expr, $chunk:expr) => {
        async {
            let mut step = RetentionStep::default();
            if let Some(before) = $clear_ip_before {
                step.ip_cleared = sqlx::query(CLEAR_IP)
                    .bind(before)
                    .bind($chunk)
                    .execute($executor)
                    .await?
                    .rows_affected();
            }
            if let Some(before) = $purge_before {
                step.purged = sqlx::query(PURGE)
                    .bind(before)
                    .bind($chunk)
                    .execute($executor)
                    .await?
                    .rows_affected();
            }
            Ok::<_, sqlx::Error>(step)
        }
    };
}

impl Store {
    /// One step of the retention job: clears the IP and user agent of at
    /// most `chunk` comments created before `clear_ip_before`, and deletes at
    /// most `chunk` spam or rejected comments moderated before
    /// `purge_before` (a comment never moderated, such as one imported as
    /// spam, counts from its creation). `None` for a rule that is off.
    /// Bounded, so that no statement holds SQLite's write lock for long; the
    /// caller repeats it until a step changes less than a chunk.
    ///
    /// PostgreSQL: both statements in one transaction that first takes an
    /// advisory lock; `Ok(None)` when another instance holds it (it is
    /// running the job). SQLite has one instance per file, so each statement
    /// runs on its own, atomic by itself: no transaction holds the write lock
    /// across the awaits between statements, where a stalled task would keep
    /// every other writer (a `marginalia` command, say) waiting.
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
        match self {
            Store::Sqlite(backend) => {
                let pool = &backend.pool;
                retention_statements!(pool, clear_ip_before, purge_before, chunk)
                    .await
                    .map(Some)
                    .map_err(super::sqlite::classify)
            }
            Store::Postgres(backend) => {
                backend
                    .transaction(async |connection| {
                        if !backend.try_job_lock(connection, RETENTION_LOCK).await? {
                            return Ok(None);
                        }
                        retention_statements!(&mut *connection, clear_ip_before, purge_before, chunk)
                            .await
                            .map(Some)
                    })
                    .await
            }
        }
    }
}
