//! Moving data in and out: the statements of an import (a whole file in one
//! transaction, replies linked to their parents once every comment is in),
//! the reading of an Isso database file, the export of every comment, and the
//! backup of a SQLite file. Written once for both backends, like the rest of
//! `store` (the backup alone is SQLite's).

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use futures_util::TryStreamExt;
use sqlx::QueryBuilder;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use super::{PostgresStore, SqliteStore, Store, StoreError, postgres, sqlite};
use crate::domain::{Comment, ImportedComment, Status, ThreadUri};

/// The comments one insert statement of an import carries: 13 parameters
/// each stays well under SQLite's 32,766 and PostgreSQL's 65,535.
pub const IMPORT_BATCH: usize = 500;

/// The open transaction of one import. Nothing it writes is seen by anyone
/// until [`ImportSession::finish`] commits, and nothing is kept if it is
/// dropped or finished without committing (a dry run, a malformed file).
pub struct ImportSession {
    transaction: ImportTransaction,
    /// Threads that gained approved comments or were closed: announced to
    /// every instance when the import commits.
    published: BTreeSet<String>,
}

enum ImportTransaction {
    Sqlite(SqliteStore, sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(PostgresStore, sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs statements written once on the import's transaction: `$body` is a
/// `Result<T, sqlx::Error>` that may use `?`, with `$connection` the
/// transaction's connection and `$backend` the backend (for its hooks).
macro_rules! in_import {
    ($transaction:expr, |$backend:ident, $connection:ident| $body:expr) => {
        match $transaction {
            ImportTransaction::Sqlite($backend, transaction) => {
                let $connection: &mut sqlx::SqliteConnection = &mut *transaction;
                let result: Result<_, sqlx::Error> = async { $body }.await;
                result.map_err(sqlite::classify)
            }
            ImportTransaction::Postgres($backend, transaction) => {
                let $connection: &mut sqlx::PgConnection = &mut *transaction;
                let result: Result<_, sqlx::Error> = async { $body }.await;
                result.map_err(postgres::classify)
            }
        }
    };
}

/// What linking replies to their parents found, once the whole file was in.
#[derive(Debug, Clone, Default)]
pub struct ImportLinks {
    /// Replies left without a parent: `(source id, parent named)`, the first few.
    pub unlinked: Vec<(String, String)>,
    /// How many replies were left without a parent in all.
    pub unlinked_count: i64,
}

/// A row of the export: every column of a comment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct ExportedComment {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub comment: Comment,
    /// Where an imported comment came from; null for one submitted here.
    pub source_id: Option<String>,
}

impl Store {
    /// Begins an import: one transaction for the whole file (on SQLite it
    /// takes the write lock at once, so the serving instance's writes wait
    /// for it, then get 503 after the busy timeout), and two scratch tables
    /// that live in it: who answers whom, and the other names of comments.
    pub async fn begin_import(&self) -> Result<ImportSession, StoreError> {
        let transaction = match self {
            Store::Sqlite(backend) => ImportTransaction::Sqlite(
                backend.clone(),
                backend
                    .pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(sqlite::classify)?,
            ),
            Store::Postgres(backend) => ImportTransaction::Postgres(
                backend.clone(),
                backend.pool.begin().await.map_err(postgres::classify)?,
            ),
        };
        let mut session = ImportSession {
            transaction,
            published: BTreeSet::new(),
        };
        in_import!(&mut session.transaction, |_backend, connection| {
            sqlx::query(
                "CREATE TEMPORARY TABLE IF NOT EXISTS import_parents \
                 (child TEXT PRIMARY KEY, parent TEXT NOT NULL)",
            )
            .execute(&mut *connection)
            .await?;
            sqlx::query(
                "CREATE TEMPORARY TABLE IF NOT EXISTS import_aliases \
                 (alias TEXT PRIMARY KEY, source_id TEXT NOT NULL)",
            )
            .execute(&mut *connection)
            .await?;
            // A pooled SQLite connection keeps its temporary tables: start empty.
            sqlx::query("DELETE FROM import_parents")
                .execute(&mut *connection)
                .await?;
            sqlx::query("DELETE FROM import_aliases")
                .execute(&mut *connection)
                .await?;
            Ok(())
        })?;
        Ok(session)
    }

    /// Writes every comment, oldest id first, to `each`, as one statement
    /// reads them (one snapshot: comments moderated meanwhile are exported
    /// as they were when it began). Returns how many were written.
    pub async fn export_comments(
        &self,
        mut each: impl FnMut(&ExportedComment) -> std::io::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut written = 0;
        let mut failed: Option<std::io::Error> = None;
        on_pool!(self, pool => {
            let mut rows = sqlx::query_as::<_, ExportedComment>(concat!(
                "SELECT ",
                comment_columns!(),
                ", source_id FROM comments ORDER BY id"
            ))
            .fetch(pool);
            async {
                while let Some(row) = rows.try_next().await? {
                    if let Err(error) = each(&row) {
                        failed = Some(error);
                        break;
                    }
                    written += 1;
                }
                Ok::<_, sqlx::Error>(())
            }
            .await
        })
        .context("reading the comments")?;
        match failed {
            Some(error) => Err(error).context("writing the export"),
            None => Ok(written),
        }
    }

    /// Copies a live SQLite database into a new file at `path` (`VACUUM
    /// INTO`): one consistent snapshot, taken while the service goes on
    /// serving. PostgreSQL has its own tool for that.
    pub async fn backup(&self, path: &Path) -> anyhow::Result<()> {
        match self {
            Store::Sqlite(backend) => {
                let path = path.to_str().context("the backup path must be valid UTF-8")?;
                sqlx::query("VACUUM INTO $1")
                    .bind(path)
                    .execute(&backend.pool)
                    .await
                    .context("copying the database (VACUUM INTO)")?;
                Ok(())
            }
            Store::Postgres(_) => anyhow::bail!(
                "`marginalia backup` copies SQLite databases; back up PostgreSQL with pg_dump, \
                 e.g. `pg_dump --format=custom --file=marginalia.dump DATABASE_URL`"
            ),
        }
    }
}

impl ImportSession {
    /// Inserts a batch (at most [`IMPORT_BATCH`]) as given: status, dates,
    /// IP and source id included, and no notification event, since nobody
    /// is to be told about comments written long ago. A comment whose source
    /// id is already stored is left alone. Returns the status of each
    /// comment inserted now.
    pub async fn insert(&mut self, comments: &[ImportedComment]) -> Result<Vec<Status>, StoreError> {
        if comments.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String)> = in_import!(&mut self.transaction, |_backend, connection| {
            let mut sql = QueryBuilder::new(
                "INSERT INTO comments (uri, name, email, website, body, body_html, status, created_at, \
                 moderated_at, moderated_by, ip, user_agent, source_id, spam_score, spam_clues) ",
            );
            sql.push_values(comments, |mut row, comment| {
                row.push_bind(comment.uri.as_str())
                    .push_bind(comment.name.as_str())
                    .push_bind(comment.email.as_str())
                    .push_bind(comment.website.as_ref().map(|w| w.as_str()))
                    .push_bind(comment.body.markdown())
                    .push_bind(comment.body.html())
                    .push_bind(comment.status.as_str())
                    // UTC, like every time the store writes: SQLite compares them as text.
                    .push_bind(comment.created_at.to_offset(time::UtcOffset::UTC))
                    .push_bind(comment.moderated_at.map(|at| at.to_offset(time::UtcOffset::UTC)))
                    .push_bind(comment.moderated_by.as_deref())
                    .push_bind(comment.ip.as_deref())
                    .push_bind(comment.user_agent.as_deref())
                    .push_bind(comment.source_id.as_str())
                    .push_bind(comment.spam_score)
                    .push_bind(comment.spam_clues.to_json());
            });
            sql.push(" ON CONFLICT (source_id) DO NOTHING RETURNING status, uri");
            let rows = sql
                .build_query_as::<(String, String)>()
                .fetch_all(&mut *connection)
                .await?;

            let replies: Vec<&ImportedComment> = comments.iter().filter(|c| c.parent.is_some()).collect();
            if !replies.is_empty() {
                let mut sql = QueryBuilder::new("INSERT INTO import_parents (child, parent) ");
                sql.push_values(replies, |mut row, comment| {
                    row.push_bind(comment.source_id.as_str())
                        .push_bind(comment.parent.as_deref());
                });
                sql.push(" ON CONFLICT (child) DO NOTHING");
                sql.build().execute(&mut *connection).await?;
            }
            let aliased: Vec<&ImportedComment> = comments.iter().filter(|c| c.alias.is_some()).collect();
            if !aliased.is_empty() {
                let mut sql = QueryBuilder::new("INSERT INTO import_aliases (alias, source_id) ");
                sql.push_values(aliased, |mut row, comment| {
                    row.push_bind(comment.alias.as_deref())
                        .push_bind(comment.source_id.as_str());
                });
                sql.push(" ON CONFLICT (alias) DO NOTHING");
                sql.build().execute(&mut *connection).await?;
            }
            Ok(rows)
        })?;
        let mut statuses = Vec::with_capacity(rows.len());
        for (status, uri) in rows {
            let status = Status::from_str(&status)
                .map_err(|error| StoreError::Other(sqlx::Error::Decode(error.into())))?;
            if status == Status::Approved && !self.published.contains(&uri) {
                self.published.insert(uri);
            }
            statuses.push(status);
        }
        Ok(statuses)
    }

    /// Closes a thread the source has closed, unless a decision on it is
    /// stored already (an earlier import, or a moderator who reopened it):
    /// the statement of `store/threads.rs`, in the import's transaction, so
    /// a dry run or a malformed file closes nothing. `by` is recorded as who
    /// decided (`import:<format>`). Returns whether it was closed now.
    pub async fn close_thread(&mut self, uri: &ThreadUri, by: &str) -> Result<bool, StoreError> {
        let now = super::now();
        let closed = in_import!(&mut self.transaction, |_backend, connection| {
            Ok(sqlx::query(super::threads::CLOSE_UNDECIDED)
                .bind(uri.as_str())
                .bind(now)
                .bind(by)
                .execute(&mut *connection)
                .await?
                .rows_affected()
                > 0)
        })?;
        if closed {
            self.published.insert(uri.as_str().to_owned());
        }
        Ok(closed)
    }

    /// Links every reply of the file to its parent, announces the threads
    /// that changed, and commits, or rolls everything back when `commit` is
    /// false (a dry run). A reply is linked only to a comment of its own
    /// thread that comes before it (older; when as old, with a shorter
    /// source id, then a smaller one, which orders numeric ids by number):
    /// a strict order, so no chain of parents can loop, whatever the file says.
    pub async fn finish(mut self, commit: bool) -> Result<ImportLinks, StoreError> {
        let published = std::mem::take(&mut self.published);
        let links = in_import!(&mut self.transaction, |backend, connection| {
            sqlx::query(
                "UPDATE comments SET parent_id = ( \
                     SELECT p.id FROM import_parents l \
                     JOIN comments p ON p.source_id = COALESCE( \
                         (SELECT a.source_id FROM import_aliases a WHERE a.alias = l.parent), l.parent) \
                     WHERE l.child = comments.source_id AND p.uri = comments.uri \
                       AND (p.created_at, LENGTH(p.source_id), p.source_id) \
                           < (comments.created_at, LENGTH(comments.source_id), comments.source_id)) \
                 WHERE parent_id IS NULL AND source_id IN (SELECT child FROM import_parents)",
            )
            .execute(&mut *connection)
            .await?;
            let unlinked: Vec<(String, String)> = sqlx::query_as(
                "SELECT l.child, l.parent FROM import_parents l \
                 JOIN comments c ON c.source_id = l.child \
                 WHERE c.parent_id IS NULL ORDER BY l.child LIMIT 20",
            )
            .fetch_all(&mut *connection)
            .await?;
            let unlinked_count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM import_parents l \
                 JOIN comments c ON c.source_id = l.child WHERE c.parent_id IS NULL",
            )
            .fetch_one(&mut *connection)
            .await?;
            for uri in &published {
                backend.announce_thread_change(connection, uri).await?;
            }
            sqlx::query("DROP TABLE import_parents")
                .execute(&mut *connection)
                .await?;
            sqlx::query("DROP TABLE import_aliases")
                .execute(&mut *connection)
                .await?;
            Ok(ImportLinks {
                unlinked,
                unlinked_count,
            })
        })?;
        match self.transaction {
            ImportTransaction::Sqlite(_, transaction) => if commit {
                transaction.commit().await
            } else {
                transaction.rollback().await
            }
            .map_err(sqlite::classify)?,
            ImportTransaction::Postgres(_, transaction) => if commit {
                transaction.commit().await
            } else {
                transaction.rollback().await
            }
            .map_err(postgres::classify)?,
        }
        Ok(links)
    }
}

/// An Isso database file, opened read-only.
pub struct IssoFile {
    pool: SqlitePool,
}

/// A comment of an Isso database, as Isso keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IssoComment {
    pub id: i64,
    pub parent: Option<i64>,
    /// Its thread's uri; `None` when the thread row is missing.
    pub uri: Option<String>,
    /// Seconds since 1970, with a fraction.
    pub created: f64,
    /// 1 published, 2 waiting for moderation, 4 deleted (kept for its replies).
    pub mode: i64,
    pub remote_addr: Option<String>,
    pub text: Option<String>,
    pub author: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
}

impl IssoFile {
    /// Opens the file read-only (it is never written) and checks that it has
    /// Isso's tables.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(path.is_file(), "{} is not a file", path.display());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("opening {} as a SQLite database", path.display()))?;
        let file = IssoFile { pool };
        file.count().await.with_context(|| {
            format!(
                "{} is not an Isso database (no comments and threads tables)",
                path.display()
            )
        })?;
        Ok(file)
    }

    /// How many comments the file holds.
    pub async fn count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM comments c LEFT JOIN threads t ON t.id = c.tid")
            .fetch_one(&self.pool)
            .await
    }

    /// The next `limit` comments after id `after`, in id order.
    pub async fn page(&self, after: i64, limit: i64) -> Result<Vec<IssoComment>, sqlx::Error> {
        sqlx::query_as(
            "SELECT c.id, c.parent, t.uri, c.created, c.mode, c.remote_addr, c.text, c.author, \
                    c.email, c.website \
             FROM comments c LEFT JOIN threads t ON t.id = c.tid \
             WHERE c.id > $1 ORDER BY c.id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
