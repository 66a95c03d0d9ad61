//! The statements behind the Atom feeds (`crate::feeds`): the newest approved
//! comments of the whole site, or of one thread. Written once for both
//! backends (see the module header of `store`); each runs on an existing
//! index (`comments_status`, `comments_thread`), newest id first.

use time::OffsetDateTime;

use super::{Store, StoreError};
use crate::domain::{CommentId, ThreadUri};

/// An approved comment as a feed shows it. Like `PublicComment` it has no
/// email, IP or user agent field, so a feed cannot carry them; it adds the
/// thread and the moderation time (a feed entry's `updated`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedEntry {
    pub id: CommentId,
    pub uri: String,
    pub name: String,
    pub website: Option<String>,
    pub body_html: String,
    pub created_at: OffsetDateTime,
    /// When it was approved; `None` for a comment stored approved (imports).
    pub moderated_at: Option<OffsetDateTime>,
}

impl Store {
    /// The newest `limit` approved comments of the site, newest first.
    pub async fn recent_feed_entries(&self, limit: u32) -> Result<Vec<FeedEntry>, StoreError> {
        on_pool!(self, pool => sqlx::query_as::<_, FeedEntry>(
            "SELECT id, uri, name, website, body_html, created_at, moderated_at \
             FROM comments WHERE status = 'approved' ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)
    }

    /// The newest `limit` approved comments of one thread, newest first.
    pub async fn thread_feed_entries(
        &self,
        uri: &ThreadUri,
        limit: u32,
    ) -> Result<Vec<FeedEntry>, StoreError> {
        on_pool!(self, pool => sqlx::query_as::<_, FeedEntry>(
            "SELECT id, uri, name, website, body_html, created_at, moderated_at \
             FROM comments WHERE uri = $1 AND status = 'approved' ORDER BY id DESC LIMIT $2",
        )
        .bind(uri.as_str())
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await)
    }
}
