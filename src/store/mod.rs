//! Persistence: every SQL statement of the service lives under this module.
//!
//! Two backends, both first-class: SQLite (the zero-set-up default, one file)
//! and PostgreSQL (for several instances behind a load balancer). [`Store`]
//! picks one by the URL scheme; the black-box tests run against both.
//!
//! # One text per statement
//!
//! A statement both backends can run is written once, in the module of its
//! subject (`store/comments.rs`, `store/moderators.rs`): sqlx's SQLite driver
//! takes PostgreSQL's numbered `$N` parameters (reused, in any order), and
//! both speak `RETURNING` and `ON CONFLICT` and bind and read
//! `OffsetDateTime` (the tests at the end of this file check all of it). The
//! backend files (`store/sqlite.rs`, `store/postgres.rs`) keep only what truly
//! differs: connect options and pragmas, migrations, error codes, the
//! transaction wrapper, list parameters (`json_each` against `ANY`), bulk
//! import (`COPY` on PostgreSQL), and `LISTEN/NOTIFY` with the thread versions
//! it goes with (the `announce_thread_change` hook, a no-op on SQLite).
//!
//! Why macros (`on_pool!`, `in_transaction!`) rather than functions
//! generic over `sqlx::Database`: a generic statement needs an `Encode + Type`
//! bound per bound type, a `FromRow` bound per row type and an `Executor`
//! bound with lifetimes, which say nothing a reader wants to know. The macros
//! expand a method's body once per backend instead, with the pool (or the
//! transaction's connection) of that backend: the body reads as the plain
//! sqlx call it is, and each expansion is type-checked against its own driver.
//! `sqlx::Any` was no alternative: it cannot carry PostgreSQL's types.

/// Calls a backend-specific method (one written in each backend file) on
/// whichever backend is configured.
macro_rules! on_backend {
    ($store:expr, $backend:ident => $call:expr) => {
        match $store {
            $crate::store::Store::Sqlite($backend) => $call,
            $crate::store::Store::Postgres($backend) => $call,
        }
    };
}

/// Runs a statement written once on whichever backend is configured: `$body`
/// is an expression of type `Result<T, sqlx::Error>` in which `$pool` is that
/// backend's pool; its error is classified the way that backend says.
///
/// `on_pool!(self, pool => sqlx::query("…").bind(id).execute(pool).await)`
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(backend) => {
                let $pool = &backend.pool;
                $body.map_err($crate::store::sqlite::classify)
            }
            $crate::store::Store::Postgres(backend) => {
                let $pool = &backend.pool;
                $body.map_err($crate::store::postgres::classify)
            }
        }
    };
}

/// Runs statements written once in one transaction of whichever backend is
/// configured, and commits when `$body` (a `Result<T, sqlx::Error>` that may
/// use `?`) succeeds. `$connection` is the transaction's connection;
/// `$backend`, when named, is the backend itself, for its hooks such as
/// `announce_thread_change`. SQLite begins with `BEGIN` unless `sqlite_begin`
/// says otherwise.
///
/// `in_transaction!(self, |backend, connection| { …; Ok(value) })`
macro_rules! in_transaction {
    ($store:expr, |$connection:ident| $body:expr) => {
        in_transaction!($store, |_backend, $connection| $body)
    };
    ($store:expr, |$backend:ident, $connection:ident| $body:expr) => {
        in_transaction!($store, sqlite_begin: "BEGIN", |$backend, $connection| $body)
    };
    ($store:expr, sqlite_begin: $begin:literal, |$backend:ident, $connection:ident| $body:expr) => {
        in_transaction!($store, sqlite: transaction($begin), |$backend, $connection| $body)
    };
    // On the submission writer's own SQLite connection (`SqliteStore::writer`).
    ($store:expr, sqlite_writer_begin: $begin:literal, |$backend:ident, $connection:ident| $body:expr) => {
        in_transaction!($store, sqlite: writer_transaction($begin), |$backend, $connection| $body)
    };
    ($store:expr, sqlite: $method:ident($begin:literal), |$backend:ident, $connection:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($backend) => {
                $backend.$method($begin, async |$connection| $body).await
            }
            $crate::store::Store::Postgres($backend) => {
                $backend.transaction(async |$connection| $body).await
            }
        }
    };
}

/// The columns of [`Comment`], in one place for every moderator query.
macro_rules! comment_columns {
    () => {
        "id, uri, parent_id, name, email, website, body, body_html, status, created_at, \
         moderated_at, moderated_by, ip, user_agent, lang, reasons, spam_score, spam_clues"
    };
}

/// Records a notification event in the transaction of `$connection` (see
/// `store/outbox.rs`): the event commits with the change it reports, or not
/// at all. A macro for the same reason as `in_transaction!`: it expands once
/// per backend's connection type.
macro_rules! record_event {
    ($connection:expr, $kind:expr, $comment_id:expr, $deleted:expr, $now:expr) => {{
        let deleted: Option<String> = $deleted;
        sqlx::query(
            "INSERT INTO notification_events \
             (event, submitted, wants_replies, comment_id, deleted, created_at) \
             VALUES ($1, FALSE, FALSE, $2, $3, $4)",
        )
        .bind($kind.as_str())
        .bind($comment_id)
        .bind(deleted)
        .bind($now)
        .execute(&mut *$connection)
        .await?;
    }};
}

/// Queues Akismet feedback in the transaction of `$connection` when a
/// person's moderation overrides Akismet's verdict: approving what it called
/// spam (`submit-ham`), or marking as spam what it passed (`submit-spam`).
/// A delivery of the outbox (sent with its retries); its payload names the
/// comment, whose fields are read when it is sent. Automatic moderations
/// (`auto:…`) are not corrections and tell Akismet nothing.
macro_rules! queue_akismet_feedback {
    ($connection:expr, $comment_id:expr, $status:expr, $moderator:expr, $now:expr) => {{
        let (comment_id, status, moderator): ($crate::domain::CommentId, $crate::domain::Status, &str) =
            ($comment_id, $status, $moderator);
        let feedback = match status {
            $crate::domain::Status::Approved => Some(($crate::store::DeliveryKind::AkismetHam, "spam")),
            $crate::domain::Status::Spam => Some(($crate::store::DeliveryKind::AkismetSpam, "ham")),
            _ => None,
        };
        if let Some((kind, overridden)) = feedback
            && !moderator.starts_with("auto:")
        {
            sqlx::query(
                "INSERT INTO outbox (kind, recipient, payload, created_at, next_attempt_at) \
                 SELECT $2, 'akismet', $3, $4, $4 FROM comments WHERE id = $1 AND akismet = $5",
            )
            .bind(comment_id)
            .bind(kind.as_str())
            .bind(comment_id.to_string().into_bytes())
            .bind($now)
            .bind(overridden)
            .execute(&mut *$connection)
            .await?;
        }
    }};
}

/// Teaches the learning filter a person's decision on `$comment` (a
/// [`Comment`] as just updated) in the transaction of `$connection`:
/// approved is a ham example, spam a spam example, and back to the queue or
/// rejected forgets the comment's example (a rejected comment is off-topic
/// or rude as often as it is spam). A changed decision moves the example.
/// Automatic decisions (`auto:…`) teach nothing: the filter learns from
/// people, not from itself or the rules. Evaluates to `Option<Learned>`.
macro_rules! learn_from_moderation {
    ($connection:ident, $comment:expr, $moderator:expr, $now:expr) => {{
        let (comment, moderator): (&$crate::domain::Comment, &str) = ($comment, $moderator);
        if moderator.starts_with("auto:") {
            None
        } else {
            let label = match comment.status {
                $crate::domain::Status::Approved => Some($crate::classifier::Label::Ham),
                $crate::domain::Status::Spam => Some($crate::classifier::Label::Spam),
                $crate::domain::Status::Pending | $crate::domain::Status::Rejected => None,
            };
            let tokens = match label {
                Some(_) => $crate::classifier::tokenize(&$crate::classifier::Document {
                    name: &comment.name,
                    email: &comment.email,
                    website: comment.website.as_deref(),
                    body: &comment.body,
                }),
                None => Vec::new(),
            };
            learn_in_transaction!(
                $connection,
                comment.id,
                label.map(|label| (label, tokens.as_slice())),
                $now
            )
        }
    }};
}

/// Sets a comment's status inside the transaction of `$connection`, as every
/// moderation does: records who and when, announces the thread's change,
/// records the notification event and teaches the learning filter, all or
/// nothing with the transaction. Shared by `Store::set_status`, moderation
/// by one-click link and Akismet's verdict, so that no way of moderating can
/// forget the event or the filter. Evaluates to `Option<Moderated>`: `None`
/// for an unknown id; `changed: false` (and nothing written) when the
/// comment already had `$status`.
macro_rules! set_status_in_transaction {
    ($backend:ident, $connection:ident, $id:expr, $status:expr, $moderator:expr, $now:expr) => {{
        let (id, status, moderator, now): ($crate::domain::CommentId, $crate::domain::Status, &str, _) =
            ($id, $status, $moderator, $now);
        let updated = sqlx::query_as::<_, $crate::domain::Comment>(concat!(
            "UPDATE comments SET status = $2, moderated_by = $3, moderated_at = $4 \
             WHERE id = $1 AND status <> $2 RETURNING ",
            comment_columns!()
        ))
        .bind(id)
        .bind(status.as_str())
        .bind(moderator)
        .bind(now)
        .fetch_optional(&mut *$connection)
        .await?;
        match updated {
            Some(comment) => {
                $backend.announce_thread_change($connection, &comment.uri).await?;
                record_event!(
                    $connection,
                    $crate::notify::webhook::WebhookEvent::for_status(status),
                    comment.id,
                    None,
                    now
                );
                queue_akismet_feedback!($connection, comment.id, status, moderator, now);
                let learned = learn_from_moderation!($connection, &comment, moderator, now);
                Some($crate::store::Moderated {
                    comment,
                    changed: true,
                    learned,
                })
            }
            None => sqlx::query_as::<_, $crate::domain::Comment>(concat!(
                "SELECT ",
                comment_columns!(),
                " FROM comments WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(&mut *$connection)
            .await?
            .map(|comment| $crate::store::Moderated {
                comment,
                changed: false,
                learned: None,
            }),
        }
    }};
}

// First: its `learn_in_transaction!` is expanded by the moderations of the
// modules below (a macro is visible only after its definition).
#[macro_use]
mod classifier;

mod akismet;
mod batch;
mod comments;
mod feeds;
mod import;
mod links;
mod moderators;
mod outbox;
mod people;
mod postgres;
mod rate_limit;
mod retention;
mod rules;
mod secrets;
mod sqlite;
mod threads;

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::domain::{Comment, CommentId, NewComment, PublicComment, Reasons, SpamClues, Status, ThreadUri};

pub use akismet::{AkismetCheck, AkismetRecord, AkismetVerdict};
pub use batch::{InsertBatcher, Writing};
pub use classifier::{Learned, StoredExample};
pub use feeds::FeedEntry;
pub use import::{ExportedComment, IMPORT_BATCH, ImportLinks, ImportSession, IssoComment, IssoFile};
pub use links::{LinkModeration, SubscriptionConfirmation, SubscriptionRecord};
pub use outbox::{
    Delivery, DeliveryKind, DigestBatch, EventOutcome, HeldComments, NewDelivery, NewSubscription,
    NotificationEvent, OutboxFigures,
};
pub use people::{ANONYMOUS_NAME, ErasedRecords, ErasureMode, PersonRecords};
pub use postgres::PostgresStore;
pub use rate_limit::SharedVerdict;
pub use retention::RetentionStep;
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

impl StoreError {
    /// Sorts an error of a backend: unavailable when the connection or the
    /// pool failed, or when `backend_unavailable` (the backend's own codes)
    /// says so; otherwise a bug.
    fn classify(error: sqlx::Error, backend_unavailable: impl Fn(&sqlx::Error) -> bool) -> StoreError {
        let unavailable = match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            other => backend_unavailable(other),
        };
        if unavailable {
            StoreError::Unavailable(error)
        } else {
            StoreError::Other(error)
        }
    }
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
    /// `sort=score`: least likely spam first (the spam filter's score,
    /// ascending, unscored last, then by id), whatever the status.
    pub by_score: bool,
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
    /// What the learning filter learned from it (a person's decision that
    /// changed the comment's example), for this instance's copy of the model.
    pub learned: Option<Learned>,
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
    /// Another (or this) instance replaced the moderation rules.
    Rules,
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
    /// The hash of the token that started the session: the session lives only
    /// as long as that exact token is accepted.
    pub credential_hash: String,
    /// True while a stored token has that hash (false for the environment
    /// token, which the store does not know, and for a revoked token).
    pub credential_stored: bool,
}

/// Why a token could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum TokenInsertError {
    #[error("a token named `{0}` already exists")]
    NameTaken(String),
    /// The name belongs to `MARGINALIA_ADMIN_TOKEN` (see `auth::is_reserved_token_name`).
    #[error("the name `{0}` is reserved for MARGINALIA_ADMIN_TOKEN")]
    Reserved(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The configured backend.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
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

    /// Applies the embedded migrations of this backend. On PostgreSQL sqlx
    /// takes an advisory lock, so instances starting together migrate once.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        match self {
            Store::Sqlite(backend) => {
                (sqlite::MIGRATOR.run(&backend.pool).await).context("applying the SQLite migrations")
            }
            Store::Postgres(backend) => {
                (postgres::MIGRATOR.run(&backend.pool).await).context("applying the PostgreSQL migrations")
            }
        }
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
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
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

/// How a new comment is to be stored: what the moderation rules decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub status: Status,
    pub reasons: Reasons,
    /// `auto:<rule>` when a rule set the status (recorded with the time as
    /// a moderation); `None` otherwise.
    pub moderated_by: Option<String>,
    /// Refuse the comment when the same email (case ignored) already said
    /// the same body on the same uri ([`Inserted::Duplicate`]). Submissions
    /// ask for it; the store's plain inserts (benchmark seeding) do not.
    pub refuse_duplicate: bool,
    /// The learning filter's score and the tokens that weighed most;
    /// `None` when it did not score the comment.
    pub spam_score: Option<f64>,
    pub spam_clues: SpamClues,
}

impl Admission {
    /// A status and nothing else: no reasons, no moderator, duplicates
    /// allowed, no score.
    pub fn plain(status: Status) -> Self {
        Self {
            status,
            reasons: Reasons::default(),
            moderated_by: None,
            refuse_duplicate: false,
            spam_score: None,
            spam_clues: SpamClues::default(),
        }
    }
}

/// What became of one comment of an insert.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per submission, moved once to its waiting request, as the Option<Comment> before it"
)]
pub enum Inserted {
    Stored(Comment),
    /// Its parent is not an approved comment of its thread.
    ParentNotApproved,
    /// The same email already said the same body on the same uri (stored
    /// before, or earlier in the same batch).
    Duplicate,
}

impl Inserted {
    pub fn stored(self) -> Option<Comment> {
        match self {
            Inserted::Stored(comment) => Some(comment),
            _ => None,
        }
    }
}

/// The duplicate key of a submission: SHA-256 (hex) of its email lower-cased,
/// its uri and its body (already trimmed), one per line (neither an email
/// nor a uri holds a line break, so the parts cannot run into each other).
fn duplicate_key(comment: &NewComment) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(comment.email.as_str().to_lowercase().as_bytes());
    hash.update(b"\n");
    hash.update(comment.uri.as_str().as_bytes());
    hash.update(b"\n");
    hash.update(comment.body.markdown().as_bytes());
    hex::encode(hash.finalize())
}

/// Pairs each submission of a batch with the row inserted for it, or says
/// why none was: refused for its parent, or a duplicate (the insert skipped
/// it on the duplicate key). The order of `RETURNING` rows is not
/// guaranteed, so rows are matched by content; identical submissions are
/// interchangeable, so any pairing of them is right.
fn match_inserted(
    comments: &[(&NewComment, &Admission)],
    approved_parents: &HashMap<CommentId, String>,
    rows: Vec<Comment>,
) -> Vec<Inserted> {
    let mut rows: Vec<Option<Comment>> = rows.into_iter().map(Some).collect();
    comments
        .iter()
        .map(|&(comment, admission)| {
            if !parent_is_valid(comment, approved_parents) {
                return Inserted::ParentNotApproved;
            }
            rows.iter_mut()
                .find(|row| {
                    row.as_ref().is_some_and(|row| {
                        row.status == admission.status
                            && row.reasons == admission.reasons
                            && row.is_stored_form_of(comment)
                    })
                })
                .and_then(Option::take)
                .map_or(Inserted::Duplicate, Inserted::Stored)
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

#[cfg(test)]
mod tests {
    use sqlx::Connection;
    use time::OffsetDateTime;

    /// Runs the statements the shared store code relies on, written once,
    /// against one connection; `$table` is the test table's definition, in
    /// that backend's types.
    macro_rules! check_dialect {
        ($connection:expr, $table:literal) => {{
            let connection = $connection;
            // The same parameter twice, and `$2` before `$1`.
            let text: String = sqlx::query_scalar("SELECT $2 || $1 || $1")
                .bind("a")
                .bind("b")
                .fetch_one(&mut *connection)
                .await
                .unwrap();
            assert_eq!(text, "baa");

            sqlx::query($table).execute(&mut *connection).await.unwrap();
            // Not UTC, and with microseconds: both must survive the trip.
            let at = (OffsetDateTime::now_utc() + time::Duration::hours(2))
                .to_offset(time::macros::offset!(+2))
                .replace_microsecond(123_456)
                .unwrap();
            for expected in [1_i64, 2] {
                let (version, stored_at): (i64, OffsetDateTime) = sqlx::query_as(
                    "INSERT INTO dialect_facts (k, v, at) VALUES ($1, 1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = dialect_facts.v + 1 RETURNING v, at",
                )
                .bind("key")
                .bind(at)
                .fetch_one(&mut *connection)
                .await
                .unwrap();
                assert_eq!(version, expected);
                assert_eq!(stored_at, at, "the same instant");
            }
            // The store binds UTC only (`now()`), which SQLite keeps as text
            // that sorts in time order: `expires_at < $1` means what it says.
            let utc = at.to_offset(time::UtcOffset::UTC);
            sqlx::query("UPDATE dialect_facts SET at = $1 WHERE k = $2")
                .bind(utc)
                .bind("key")
                .execute(&mut *connection)
                .await
                .unwrap();
            let order: (bool, bool) =
                sqlx::query_as("SELECT at > $1, at < $2 FROM dialect_facts WHERE k = $3")
                    .bind(utc - time::Duration::microseconds(1))
                    .bind(utc + time::Duration::seconds(1))
                    .bind("key")
                    .fetch_one(&mut *connection)
                    .await
                    .unwrap();
            assert_eq!(order, (true, true), "UTC timestamps compare in time order");
        }};
    }

    #[tokio::test]
    async fn sqlite_runs_the_statements_written_for_both_backends() {
        let mut connection = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        check_dialect!(
            &mut connection,
            "CREATE TABLE dialect_facts (k TEXT PRIMARY KEY, v BIGINT NOT NULL, at TEXT NOT NULL)"
        );
    }

    #[tokio::test]
    async fn postgres_runs_the_statements_written_for_both_backends() {
        let Some(url) = std::env::var("MARGINALIA_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            return;
        };
        let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
        check_dialect!(
            &mut connection,
            "CREATE TEMPORARY TABLE dialect_facts \
             (k TEXT PRIMARY KEY, v BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL)"
        );
    }
}
