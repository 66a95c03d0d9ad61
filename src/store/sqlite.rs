//! The SQLite backend: one file, WAL, `synchronous=FULL` so that an
//! acknowledged comment survives a power cut, foreign keys on (replies keep
//! living when their parent is deleted), and a busy timeout instead of
//! immediate "database is locked" errors when writers overlap.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::{
    ImportComment, Moderated, ModerationPage, ModerationQuery, SessionRecord, StoreError, ThreadPage,
    ThreadRow, TokenInsertError, TokenRecord, fetch_limit, match_inserted, parent_is_valid, split_page,
};
use crate::domain::{Comment, CommentId, NewComment, Status, ThreadUri};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The columns of [`Comment`], in one place for every moderator query.
macro_rules! comment_columns {
    () => {
        "id, uri, parent_id, name, email, website, body, body_html, status, created_at, \
         moderated_at, moderated_by, ip, user_agent"
    };
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| "parsing the SQLite database URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .with_context(|| "opening the SQLite database")?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .context("applying the SQLite migrations")
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Inserts a batch of submissions in one transaction and one statement:
    /// one commit (one fsync) for all of them, and few round trips, since
    /// every round trip waits for a busy scheduler. `None` for a comment whose
    /// parent is not an approved comment of its thread.
    pub async fn insert_comments(
        &self,
        comments: &[&NewComment],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Comment>>, StoreError> {
        // IMMEDIATE: take the write lock first, so the parent check and the
        // insert see the same state (a deferred transaction could fail to
        // upgrade if a moderation commit slipped in between).
        self.transaction("BEGIN IMMEDIATE", async |connection| {
            let parent_ids: Vec<CommentId> =
                comments.iter().filter_map(|comment| comment.parent_id).collect();
            let approved_parents: HashMap<CommentId, String> = if parent_ids.is_empty() {
                HashMap::new()
            } else {
                let parents_json = serde_json::to_string(&parent_ids)
                    .map_err(|error| StoreError::Other(sqlx::Error::Encode(error.into())))?;
                sqlx::query_as::<_, (CommentId, String)>(
                    "SELECT id, uri FROM comments \
                     WHERE status = 'approved' AND id IN (SELECT value FROM json_each(?1))",
                )
                .bind(parents_json)
                .fetch_all(&mut *connection)
                .await
                .map_err(classify)?
                .into_iter()
                .collect()
            };
            let accepted: Vec<&&NewComment> = comments
                .iter()
                .filter(|comment| parent_is_valid(comment, &approved_parents))
                .collect();
            let rows = if accepted.is_empty() {
                Vec::new()
            } else {
                let mut sql = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO comments (uri, parent_id, name, email, website, body, body_html, status, \
                     created_at, ip, user_agent) ",
                );
                sql.push_values(accepted, |mut row, comment| {
                    row.push_bind(comment.uri.as_str())
                        .push_bind(comment.parent_id)
                        .push_bind(comment.name.as_str())
                        .push_bind(comment.email.as_str())
                        .push_bind(comment.website.as_ref().map(|w| w.as_str()))
                        .push_bind(comment.body.markdown())
                        .push_bind(comment.body.html())
                        .push_bind(Status::Pending.as_str())
                        .push_bind(now)
                        .push_bind(comment.ip.as_deref())
                        .push_bind(comment.user_agent.as_deref());
                });
                sql.push(concat!(" RETURNING ", comment_columns!()));
                sql.build_query_as::<Comment>()
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(classify)?
            };
            Ok(match_inserted(comments, &approved_parents, rows))
        })
        .await
    }

    pub async fn approved_thread(
        &self,
        uri: &ThreadUri,
        after: Option<CommentId>,
        limit: u32,
    ) -> Result<ThreadPage, StoreError> {
        let rows = sqlx::query_as::<_, ThreadRow>(
            "SELECT c.id, CASE WHEN p.id IS NULL THEN NULL ELSE c.parent_id END AS parent_id, \
                    c.name, c.website, c.body_html, c.created_at, \
                    (SELECT COUNT(*) FROM comments WHERE uri = ?1 AND status = 'approved') AS total \
             FROM comments c \
             LEFT JOIN comments p ON p.id = c.parent_id AND p.status = 'approved' \
             WHERE c.uri = ?1 AND c.status = 'approved' AND c.id > ?2 \
             ORDER BY c.id LIMIT ?3",
        )
        .bind(uri.as_str())
        .bind(after.unwrap_or(0))
        .bind(fetch_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        if let Some(page) = ThreadPage::from_rows(rows, limit, after) {
            return Ok(page);
        }
        // A page past the end: count on its own.
        let total =
            sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE uri = ?1 AND status = 'approved'")
                .bind(uri.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(classify)?;
        Ok(ThreadPage {
            total,
            comments: Vec::new(),
            next: None,
        })
    }

    pub async fn approved_counts(&self, uris: &[ThreadUri]) -> Result<HashMap<String, i64>, StoreError> {
        // One statement for any number of uris: they travel as a JSON array.
        let uris_json = serde_json::to_string(&uris.iter().map(ThreadUri::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Other(sqlx::Error::Encode(e.into())))?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT uri, COUNT(*) FROM comments \
             WHERE status = 'approved' AND uri IN (SELECT value FROM json_each(?1)) \
             GROUP BY uri",
        )
        .bind(uris_json)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows.into_iter().collect())
    }

    pub async fn moderation_list(&self, query: &ModerationQuery) -> Result<ModerationPage, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE status = "
        ));
        sql.push_bind(query.status.as_str());
        if let Some(uri) = &query.uri {
            sql.push(" AND uri = ").push_bind(uri.as_str());
        }
        let (compare, order) = if query.newest_first() {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(after) = query.after {
            sql.push(format_args!(" AND id {compare} ")).push_bind(after);
        }
        sql.push(format_args!(" ORDER BY id {order} LIMIT "))
            .push_bind(fetch_limit(query.limit));
        let mut comments = sql
            .build_query_as::<Comment>()
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        let next = split_page(&mut comments, query.limit, |c| c.id);
        Ok(ModerationPage { comments, next })
    }

    pub async fn set_status(
        &self,
        id: CommentId,
        status: Status,
        moderator: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Moderated>, StoreError> {
        let updated = sqlx::query_as::<_, Comment>(concat!(
            "UPDATE comments SET status = ?2, moderated_by = ?3, moderated_at = ?4 \
             WHERE id = ?1 AND status <> ?2 RETURNING ",
            comment_columns!()
        ))
        .bind(id)
        .bind(status.as_str())
        .bind(moderator)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        if let Some(comment) = updated {
            return Ok(Some(Moderated {
                comment,
                changed: true,
            }));
        }
        let existing = sqlx::query_as::<_, Comment>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        Ok(existing.map(|comment| Moderated {
            comment,
            changed: false,
        }))
    }

    pub async fn delete_comment(&self, id: CommentId) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("DELETE FROM comments WHERE id = ?1 RETURNING uri")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }

    pub async fn pending_count(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await
            .map_err(classify)
    }

    pub async fn insert_token(
        &self,
        name: &str,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), TokenInsertError> {
        sqlx::query("INSERT INTO moderator_tokens (name, token_hash, created_at) VALUES (?1, ?2, ?3)")
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    TokenInsertError::NameTaken(name.to_owned())
                }
                _ => TokenInsertError::Store(classify(error)),
            })?;
        Ok(())
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        sqlx::query_as("SELECT name, token_hash, created_at FROM moderator_tokens ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(classify)
    }

    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.transaction("BEGIN", async |connection| {
            let result = sqlx::query("DELETE FROM moderator_tokens WHERE name = ?1")
                .bind(name)
                .execute(&mut *connection)
                .await
                .map_err(classify)?;
            sqlx::query("DELETE FROM moderator_sessions WHERE moderator = ?1")
                .bind(name)
                .execute(&mut *connection)
                .await
                .map_err(classify)?;
            Ok(result.rows_affected() > 0)
        })
        .await
    }

    pub async fn comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        sqlx::query_as::<_, Comment>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)
    }

    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as("SELECT status, COUNT(*) FROM comments GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(classify)
    }

    pub async fn insert_session(
        &self,
        id_hash: &str,
        moderator: &str,
        csrf_token: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.transaction("BEGIN", async |connection| {
            sqlx::query("DELETE FROM moderator_sessions WHERE expires_at < ?1")
                .bind(now)
                .execute(&mut *connection)
                .await
                .map_err(classify)?;
            sqlx::query(
                "INSERT INTO moderator_sessions (id_hash, moderator, csrf_token, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(id_hash)
            .bind(moderator)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *connection)
            .await
            .map_err(classify)?;
            Ok(())
        })
        .await
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query_as("SELECT moderator, csrf_token, expires_at FROM moderator_sessions WHERE id_hash = ?1")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM moderator_sessions WHERE id_hash = ?1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn bulk_import(&self, comments: &[ImportComment]) -> Result<u64, StoreError> {
        self.transaction("BEGIN", async |connection| {
            for comment in comments {
                sqlx::query(
                    "INSERT INTO comments (uri, name, email, website, body, body_html, status, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .bind(&comment.uri)
                .bind(&comment.name)
                .bind(&comment.email)
                .bind(comment.website.as_deref())
                .bind(&comment.body)
                .bind(&comment.body_html)
                .bind(comment.status.as_str())
                .bind(comment.created_at)
                .execute(&mut *connection)
                .await
                .map_err(classify)?;
            }
            Ok(comments.len() as u64)
        })
        .await
    }

    /// Runs `work` in a transaction begun with `begin`, and commits it. When
    /// anything fails, the connection is closed instead of going back to the
    /// pool: after SQLITE_FULL or an I/O error SQLite may already have rolled
    /// the transaction back by itself, sqlx's own ROLLBACK then fails, and the
    /// connection would stay "in a transaction" for good (every later `BEGIN`
    /// failing with "non-zero transaction depth": a 500 until a restart, even
    /// after the disk has room again).
    async fn transaction<T>(
        &self,
        begin: &'static str,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(classify)?;
        let result = async {
            let mut tx = connection.begin_with(begin).await.map_err(classify)?;
            let value = work(&mut tx).await?;
            tx.commit().await.map_err(classify)?;
            Ok(value)
        }
        .await;
        if result.is_err() {
            connection.close_on_drop();
        }
        result
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// SQLite primary result codes that mean "the database cannot take this right
/// now" rather than "the query is wrong": BUSY, LOCKED, READONLY, IOERR, FULL,
/// CANTOPEN.
const UNAVAILABLE_CODES: [i64; 6] = [5, 6, 8, 10, 13, 14];

/// True for a result code (primary or extended) of [`UNAVAILABLE_CODES`].
fn is_unavailable_code(code: &str) -> bool {
    code.parse::<i64>()
        .ok()
        // Extended codes carry the primary code in their low byte.
        .is_some_and(|code| UNAVAILABLE_CODES.contains(&(code & 0xff)))
}

fn classify(error: sqlx::Error) -> StoreError {
    let unavailable = match &error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_code(&code)),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable(error)
    } else {
        StoreError::Other(error)
    }
}

#[cfg(test)]
mod tests {
    use super::is_unavailable_code;

    #[test]
    fn full_read_only_io_and_busy_databases_are_unavailable_and_bugs_are_not() {
        // FULL, READONLY, IOERR, CANTOPEN, BUSY, LOCKED, and extended codes:
        // IOERR_WRITE, IOERR_FSYNC, READONLY_DBMOVED, BUSY_SNAPSHOT.
        for code in ["13", "8", "10", "14", "5", "6", "778", "1034", "1032", "517"] {
            assert!(is_unavailable_code(code), "{code}");
        }
        // ERROR, CORRUPT, CONSTRAINT, CONSTRAINT_UNIQUE, MISMATCH, not a number.
        for code in ["1", "11", "19", "2067", "20", "", "x"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }
}
