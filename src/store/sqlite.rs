//! The SQLite backend: one file, WAL, `synchronous=FULL` so that an
//! acknowledged comment survives a power cut, foreign keys on (replies keep
//! living when their parent is deleted), and a busy timeout instead of
//! immediate "database is locked" errors when writers overlap, a small page
//! cache per pooled connection ([`PAGE_CACHE_KIB`]), and one connection of
//! its own for the submission writer ([`SqliteStore::writer`]).
//!
//! Only what differs from PostgreSQL is here: the statements both run are in
//! the subject modules of `store`.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::{ImportComment, StoreError};
use crate::domain::CommentId;

/// The SQLite migrations, embedded.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Prepared statements the submission writer keeps: a batch's multi-row
/// statements differ by row count (1 to `MAX_BATCH`), three kinds of them.
const WRITER_STATEMENT_CACHE: usize = 400;

/// Page cache of each pooled connection, in KiB (SQLite's default is about
/// 2 MiB). Eight connections at 2 MiB each held up to 16 MiB of the 64 MiB
/// budget once a server had read many threads; the file's pages stay in the
/// operating system's cache anyway, so a miss here is a `pread` from memory.
/// At 512 KiB, reading 1,000 imported 100-comment threads peaked 11.5 MiB
/// lower, and neither uncached thread reads nor submissions got slower in
/// interleaved rounds (BENCHMARKS.md, "Memory across the whole benchmark").
pub const PAGE_CACHE_KIB: u32 = 512;

/// Page cache of the submission writer's connection, in KiB: the one
/// connection whose cache stays warm (see [`SqliteStore::writer`]), and the
/// index pages every insert dirties are what it keeps.
pub const WRITER_PAGE_CACHE_KIB: u32 = 2048;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// The one connection that commits submissions (`store::batch`). Always
    /// the same connection, because the pool hands its connections out in
    /// turn: a batch on a connection other than the last writer's finds its
    /// page cache stale (SQLite drops it and reads the pages again) and its
    /// prepared statements missing, which cost more than the inserts did.
    pub(super) writer: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| "parsing the SQLite database URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Negative: a size in KiB rather than in pages.
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await
            .with_context(|| "opening the SQLite database")?;
        // Kept open for good: a new connection would start with a cold cache.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(
                options
                    .statement_cache_capacity(WRITER_STATEMENT_CACHE)
                    .pragma("cache_size", format!("-{WRITER_PAGE_CACHE_KIB}"))
                    // A batch's statement journal (a multi-row insert that
                    // may fail midway keeps one) in memory: on disk it cost
                    // a file created and unlinked per batch. Only here, where
                    // a statement is at most one batch: the importer's
                    // temporary tables and journals on the other connections
                    // would grow in memory without bound (a 100,000-comment
                    // import peaked at 190 MiB with it, against 32).
                    .pragma("temp_store", "memory"),
            )
            .await
            .with_context(|| "opening the SQLite database")?;
        Ok(Self { pool, writer })
    }

    /// Closes both pools, waiting for connections to be returned.
    pub(super) async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// The approved comments among `ids`: id → uri. The ids travel as one
    /// JSON array, so one statement serves any number of them.
    pub(super) async fn approved_parents(
        &self,
        connection: &mut SqliteConnection,
        ids: &[CommentId],
    ) -> Result<Vec<(CommentId, String)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, uri FROM comments \
             WHERE status = 'approved' AND id IN (SELECT value FROM json_each($1))",
        )
        .bind(json_array(ids)?)
        .fetch_all(connection)
        .await
    }

    /// Approved comments per uri (uris without any are absent). The uris
    /// travel as one JSON array.
    pub(super) async fn approved_counts(&self, uris: &[&str]) -> Result<Vec<(String, i64)>, StoreError> {
        let uris = json_array(uris).map_err(classify)?;
        sqlx::query_as(
            "SELECT uri, COUNT(*) FROM comments \
             WHERE status = 'approved' AND uri IN (SELECT value FROM json_each($1)) \
             GROUP BY uri",
        )
        .bind(uris)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)
    }

    /// Nothing to announce: a SQLite file has one instance, and it drops its
    /// own cached copy of a thread it changes.
    pub(super) async fn announce_thread_change(
        &self,
        _connection: &mut SqliteConnection,
        _uri: &str,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    /// Nothing to tell: one instance per file, and it updates its own copy.
    pub(super) async fn announce_rules_change(
        &self,
        _connection: &mut SqliteConnection,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    pub(super) async fn bulk_import(&self, comments: &[ImportComment]) -> Result<u64, StoreError> {
        self.transaction("BEGIN", async |connection| {
            for comment in comments {
                sqlx::query(
                    "INSERT INTO comments (uri, name, email, website, body, body_html, status, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
                .await?;
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
    pub(super) async fn transaction<T>(
        &self,
        begin: &'static str,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        transaction_on(&self.pool, begin, work).await
    }

    /// [`Self::transaction`] on the submission writer's own connection.
    pub(super) async fn writer_transaction<T>(
        &self,
        begin: &'static str,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        transaction_on(&self.writer, begin, work).await
    }
}

/// Runs `work` in a transaction on a connection of `pool` (see
/// [`SqliteStore::transaction`]).
async fn transaction_on<T>(
    pool: &SqlitePool,
    begin: &'static str,
    work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, sqlx::Error>,
) -> Result<T, StoreError> {
    let mut connection = pool.acquire().await.map_err(classify)?;
    let result = async {
        let mut tx = connection.begin_with(begin).await?;
        let value = work(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }
    .await;
    if result.is_err() {
        connection.close_on_drop();
    }
    result.map_err(classify)
}

/// A list parameter as the JSON array `json_each` reads.
fn json_array<T: serde::Serialize>(items: &[T]) -> Result<String, sqlx::Error> {
    serde_json::to_string(items).map_err(|error| sqlx::Error::Encode(error.into()))
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

/// Splits SQLite's errors into "try again later" and "a bug".
pub(super) fn classify(error: sqlx::Error) -> StoreError {
    StoreError::classify(error, |error| match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_code(&code)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::{PAGE_CACHE_KIB, SqliteStore, WRITER_PAGE_CACHE_KIB, is_unavailable_code};

    #[tokio::test]
    async fn every_pooled_connection_keeps_the_small_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cache.db").display());
        let store = SqliteStore::connect(&url).await.unwrap();
        // Held together, so that the pool opens more than one connection.
        let mut connections = Vec::new();
        for _ in 0..3 {
            connections.push(store.pool.acquire().await.unwrap());
        }
        for connection in &mut connections {
            let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(&mut **connection)
                .await
                .unwrap();
            assert_eq!(size, -i64::from(PAGE_CACHE_KIB));
        }
        // The submission writer keeps a larger one, and its statement
        // journals in memory (2 = MEMORY); the others keep theirs in files
        // (0 = DEFAULT), which the importer's temporary tables need.
        let mut writer = store.writer.acquire().await.unwrap();
        let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&mut *writer)
            .await
            .unwrap();
        assert_eq!(size, -i64::from(WRITER_PAGE_CACHE_KIB));
        let temp_store = async |connection: &mut sqlx::SqliteConnection| -> i64 {
            sqlx::query_scalar("PRAGMA temp_store")
                .fetch_one(connection)
                .await
                .unwrap()
        };
        assert_eq!(temp_store(&mut writer).await, 2);
        for connection in &mut connections {
            assert_eq!(temp_store(connection).await, 0);
        }
    }

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
