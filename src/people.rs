//! Readers' data rights (GDPR articles 15 and 17, WordPress's "export and
//! erase personal data" tools): everything held about one email address, and
//! its erasure. The moderator API (`routes::admin_people`) and the binary
//! (`marginalia people export|erase`) call these; the SQL is in
//! `store/people.rs`.
//!
//! Erasure anonymizes by default, as WordPress does: the comment's text stays
//! so that threads still read, while the name becomes "Anonymous" and the
//! email, website, IP address and user agent are removed. Asked to, it
//! deletes the comments instead (replies stay, as with a single deletion).
//! Either way the address's reply-mail subscriptions and every mail to it in
//! the outbox go in the same transaction, and the published threads change at
//! once: this instance drops its cached pages before answering, and on
//! PostgreSQL every other instance hears of the change through the thread
//! notifications the store sends on commit.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::{Comment, CommentId, Email};
use crate::state::AppState;
use crate::store::{ErasedRecords, ErasureMode, Store, StoreError, SubscriptionRecord};

/// Everything held about one address, as `GET /api/admin/people` and
/// `marginalia people export` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PersonExport {
    /// The address asked about, as given (trimmed).
    pub email: String,
    /// Every comment written with the address (whatever its capitals), in
    /// every status, oldest first, with every field a moderator sees (IP and
    /// user agent while they are kept).
    pub comments: Vec<Comment>,
    /// Its reply-mail subscriptions.
    pub subscriptions: Vec<SubscriptionView>,
}

/// A reply-mail subscription as exported.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionView {
    /// The subscriber's own comment, whose replies are mailed.
    pub comment_id: CommentId,
    pub uri: String,
    pub email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the double opt-in was confirmed; null: never (nothing but the
    /// confirmation was mailed).
    #[serde(with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    /// When the reader unsubscribed; null: active.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
}

impl From<SubscriptionRecord> for SubscriptionView {
    fn from(record: SubscriptionRecord) -> Self {
        Self {
            comment_id: record.comment_id,
            uri: record.uri,
            email: record.email,
            created_at: record.created_at,
            confirmed_at: record.confirmed_at,
            ended_at: record.ended_at,
        }
    }
}

/// Everything held about `email`.
pub async fn export(store: &Store, email: &Email) -> Result<PersonExport, StoreError> {
    let records = store.person_records(email.as_str()).await?;
    Ok(PersonExport {
        email: email.as_str().to_owned(),
        comments: records.comments,
        subscriptions: records.subscriptions.into_iter().map(Into::into).collect(),
    })
}

/// Erases `email` from the store (see the module header); `moderated_by` is
/// recorded on anonymized comments (a token's name, or `cli`). The caller
/// owns the caches: a running service uses [`erase_published`]. Repeating it
/// changes nothing and reports zeros.
pub async fn erase(
    store: &Store,
    email: &Email,
    mode: ErasureMode,
    moderated_by: &str,
) -> Result<ErasedRecords, StoreError> {
    let erased = store.erase_person(email.as_str(), mode, moderated_by).await?;
    // Counts only: the address is what was erased, so it is not logged.
    tracing::info!(
        mode = ?mode,
        comments = erased.comments,
        subscriptions = erased.subscriptions,
        mails = erased.mails,
        threads = erased.uris.len(),
        moderator = moderated_by,
        "personal data erased"
    );
    Ok(erased)
}

/// [`erase`] from the moderator API: also drops this instance's cached
/// pages of every touched thread before answering, so the very next read
/// shows the change (other instances hear of it from the store).
pub async fn erase_published(
    state: &AppState,
    email: &Email,
    mode: ErasureMode,
    moderated_by: &str,
) -> Result<ErasedRecords, StoreError> {
    let erased = erase(&state.store, email, mode, moderated_by).await?;
    for uri in &erased.uris {
        state.threads.invalidate(uri);
    }
    Ok(erased)
}
