//! Persistence: every SQL statement of the service lives under this module.
//!
//! Two backends, both first-class: SQLite (the zero-set-up default, one file)
//! and PostgreSQL (for several instances behind a load balancer). `sqlx::Any`
//! cannot carry PostgreSQL's types, so each backend has its own small
//! implementation and migration folder, and [`Store`] picks one by the URL
//! scheme. The black-box tests run against both.

mod batch;
mod postgres;
mod sqlite;

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::domain::{Comment, CommentId, NewComment, PublicComment, Status, ThreadUri};

pub use batch::InsertBatcher;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// A store failure, split the way the client needs it: "try again later"
/// (503) or "we have a bug" (500).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or written right now (connection lost,
    /// pool exhausted, disk full, read-only file, locked): the client may retry.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a broken query, a constraint we did not expect, bad data.
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

/// A page of a thread as the public sees it.
#[derive(Debug, Clone)]
pub struct ThreadPage {
    /// Approved comments in the whole thread, not just this page.
    pub total: i64,
    pub comments: Vec<PublicComment>,
    /// The cursor of the next page, if there is one.
    pub next: Option<CommentId>,
}

/// A row of the thread query: a comment and the thread's total, read by the
/// same statement (one statement sees one snapshot, so the two agree without
/// a transaction).
#[derive(Debug, Clone, sqlx::FromRow)]
struct ThreadRow {
    #[sqlx(flatten)]
    comment: PublicComment,
    total: i64,
}

impl ThreadPage {
    /// Builds a page from the rows of the thread query. `None` when the rows
    /// cannot tell the total (a page past the end has no rows to carry it).
    fn from_rows(rows: Vec<ThreadRow>, limit: u32, after: Option<CommentId>) -> Option<Self> {
        let total = match rows.first() {
            Some(row) => row.total,
            None if after.is_none() => 0,
            None => return None,
        };
        let mut comments: Vec<PublicComment> = rows.into_iter().map(|row| row.comment).collect();
        let next = split_page(&mut comments, limit, |c| c.id);
        Some(ThreadPage {
            total,
            comments,
            next,
        })
    }
}

/// A page of the moderation list.
#[derive(Debug, Clone)]
pub struct ModerationPage {
    pub comments: Vec<Comment>,
    pub next: Option<CommentId>,
}

/// What the moderation list asks for.
#[derive(Debug, Clone)]
pub struct ModerationQuery {
    pub status: Status,
    pub uri: Option<ThreadUri>,
    /// Only comments after this cursor (in the list's order).
    pub after: Option<CommentId>,
    pub limit: u32,
}

impl ModerationQuery {
    /// The queue is worked oldest first; the archives (approved, rejected,
    /// spam) are browsed newest first.
    pub fn newest_first(&self) -> bool {
        self.status != Status::Pending
    }
}

/// The outcome of a moderation action on an existing comment.
#[derive(Debug, Clone)]
pub struct Moderated {
    pub comment: Comment,
    /// False when the comment already had that status (a harmless repeat).
    pub changed: bool,
}

/// A moderator token as listed by `marginalia token list` (never its value).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRecord {
    pub name: String,
    pub token_hash: String,
    pub created_at: OffsetDateTime,
}

/// A comment brought in whole, bypassing the queue: imports from another
/// system and benchmark seeding. The body is already rendered.
#[derive(Debug, Clone)]
pub struct ImportComment {
    pub uri: String,
    pub name: String,
    pub email: String,
    pub website: Option<String>,
    pub body: String,
    pub body_html: String,
    pub status: Status,
    pub created_at: OffsetDateTime,
}

/// What the PostgreSQL change listener reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// Another (or this) instance changed the public view of this thread.
    Thread(String),
    /// The listener is (re)connected: anything cached before may be stale.
    Listening,
    /// The listener is down: notifications may be missed until `Listening`.
    Lost,
}

/// A browser session of the moderation page (looked up by the id's hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRecord {
    pub moderator: String,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

/// Why a token could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum TokenInsertError {
    #[error("a token named `{0}` already exists")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The configured backend.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Calls the same method on whichever backend is configured.
macro_rules! on_backend {
    ($store:expr, $backend:ident => $call:expr) => {
        match $store {
            Store::Sqlite($backend) => $call,
            Store::Postgres($backend) => $call,
        }
    };
}

impl Store {
    /// Opens the database named by `url` (`sqlite://…` or `postgres://…`).
    /// SQLite files are created if missing. Does not migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PostgresStore::connect(url).await?))
        } else {
            anyhow::bail!("the database URL must start with sqlite:// or postgres://")
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        on_backend!(self, store => store.migrate().await)
    }

    /// "SQLite at marginalia.db", "PostgreSQL at host:5432/db": for logs, never
    /// with a password.
    pub fn describe(url: &str) -> String {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            return format!("SQLite at {path}");
        }
        match url::Url::parse(url) {
            Ok(parsed) => format!(
                "PostgreSQL at {}:{}{}",
                parsed.host_str().unwrap_or("localhost"),
                parsed.port().unwrap_or(5432),
                parsed.path()
            ),
            Err(_) => "an unparseable database URL".into(),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, store => store.ping().await)
    }

    /// Stores a pending comment. `None` when its parent is not an approved
    /// comment of the same thread (checked in the same statement as the insert,
    /// so a parent rejected meanwhile cannot slip through). The service goes
    /// through [`InsertBatcher`] instead, which commits many at once.
    pub async fn insert_comment(&self, comment: &NewComment) -> Result<Option<Comment>, StoreError> {
        Ok(self.insert_comments(&[comment]).await?.pop().flatten())
    }

    /// Stores pending comments in one transaction; one result per comment.
    pub async fn insert_comments(
        &self,
        comments: &[&NewComment],
    ) -> Result<Vec<Option<Comment>>, StoreError> {
        on_backend!(self, store => store.insert_comments(comments, now()).await)
    }

    /// Approved comments of a thread, oldest first, after the cursor.
    pub async fn approved_thread(
        &self,
        uri: &ThreadUri,
        after: Option<CommentId>,
        limit: u32,
    ) -> Result<ThreadPage, StoreError> {
        on_backend!(self, store => store.approved_thread(uri, after, limit).await)
    }

    /// Approved comments per uri; uris without any are absent from the map.
    pub async fn approved_counts(&self, uris: &[ThreadUri]) -> Result<HashMap<String, i64>, StoreError> {
        on_backend!(self, store => store.approved_counts(uris).await)
    }

    /// The moderation list: one status, optionally one thread, keyset-paged.
    pub async fn moderation_list(&self, query: &ModerationQuery) -> Result<ModerationPage, StoreError> {
        on_backend!(self, store => store.moderation_list(query).await)
    }

    /// Sets a comment's status and records who did it and when. `None` for an
    /// unknown id. Repeating an action changes nothing (not even the record of
    /// who moderated).
    pub async fn set_status(
        &self,
        id: CommentId,
        status: Status,
        moderator: &str,
    ) -> Result<Option<Moderated>, StoreError> {
        on_backend!(self, store => store.set_status(id, status, moderator, now()).await)
    }

    /// Deletes a comment for good; its replies stay (their `parent_id` is
    /// cleared by the foreign key). Returns its thread's uri; `None` for an unknown id.
    pub async fn delete_comment(&self, id: CommentId) -> Result<Option<String>, StoreError> {
        on_backend!(self, store => store.delete_comment(id).await)
    }

    /// How many comments await moderation.
    pub async fn pending_count(&self) -> Result<i64, StoreError> {
        on_backend!(self, store => store.pending_count().await)
    }

    pub async fn insert_token(&self, name: &str, token_hash: &str) -> Result<(), TokenInsertError> {
        on_backend!(self, store => store.insert_token(name, token_hash, now()).await)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        on_backend!(self, store => store.list_tokens().await)
    }

    /// False when no token has that name. The token's browser sessions end with it.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        on_backend!(self, store => store.revoke_token(name).await)
    }

    /// One comment with everything a moderator sees.
    pub async fn comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        on_backend!(self, store => store.comment(id).await)
    }

    /// How many comments have each status (statuses without any are absent).
    pub async fn status_counts(&self) -> Result<HashMap<Status, i64>, StoreError> {
        let rows = on_backend!(self, store => store.status_counts().await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(status, count)| status.parse::<Status>().ok().map(|status| (status, count)))
            .collect())
    }

    /// Stores a session and forgets expired ones.
    pub async fn insert_session(
        &self,
        id_hash: &str,
        moderator: &str,
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_backend!(self, store => store.insert_session(id_hash, moderator, csrf_token, now(), expires_at).await)
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        on_backend!(self, store => store.session(id_hash).await)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        on_backend!(self, store => store.delete_session(id_hash).await)
    }

    /// Inserts many comments in one transaction (SQLite: one prepared
    /// statement; PostgreSQL: `COPY`). Returns how many were inserted.
    pub async fn bulk_import(&self, comments: &[ImportComment]) -> Result<u64, StoreError> {
        on_backend!(self, store => store.bulk_import(comments).await)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        on_backend!(self, store => store.close().await)
    }
}

/// The current time at the precision both backends keep (microseconds), so
/// that what a response says is exactly what was stored.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_microsecond(now.microsecond()).unwrap_or(now)
}

/// True when a submission names no parent, or an approved comment of its own
/// thread (`approved_parents`: id → uri of the approved parents found).
fn parent_is_valid(comment: &NewComment, approved_parents: &HashMap<CommentId, String>) -> bool {
    comment.parent_id.is_none_or(|id| {
        approved_parents
            .get(&id)
            .is_some_and(|uri| uri == comment.uri.as_str())
    })
}

/// Pairs each submission of a batch with the row inserted for it (`None` for
/// the ones refused for their parent). The order of `RETURNING` rows is not
/// guaranteed, so rows are matched by content; identical submissions are
/// interchangeable, so any pairing of them is right.
fn match_inserted(
    comments: &[&NewComment],
    approved_parents: &HashMap<CommentId, String>,
    rows: Vec<Comment>,
) -> Vec<Option<Comment>> {
    let mut rows: Vec<Option<Comment>> = rows.into_iter().map(Some).collect();
    comments
        .iter()
        .map(|comment| {
            if !parent_is_valid(comment, approved_parents) {
                return None;
            }
            rows.iter_mut()
                .find(|row| row.as_ref().is_some_and(|row| row.is_stored_form_of(comment)))
                .and_then(Option::take)
        })
        .collect()
}

/// The number of rows a page query fetches: one more than asked, to learn
/// whether a next page exists without a second query.
fn fetch_limit(limit: u32) -> i64 {
    i64::from(limit) + 1
}

/// Splits the extra row off a page and returns the cursor of the next page.
fn split_page<T>(rows: &mut Vec<T>, limit: u32, id_of: impl Fn(&T) -> CommentId) -> Option<CommentId> {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(id_of)
    } else {
        None
    }
}
