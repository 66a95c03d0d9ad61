//! The statements behind one-click links (`used_links`, and the reading,
//! confirming and ending of `subscriptions`): a moderation by link, a
//! subscription's confirmation and an unsubscription. Written once for both
//! backends (see `store`).
//!
//! Single use is kept here, in the transaction of the action: the link's
//! nonce goes into `used_links` (`ON CONFLICT DO NOTHING`), and a nonce that
//! is already there means the link was used, so nothing else is written.
//! Whether a link is genuine is the caller's part (`notify::links`).

use time::OffsetDateTime;

use super::{Moderated, Store, StoreError, now};
use crate::domain::{CommentId, Status};

/// The outcome of a moderation by link.
#[derive(Debug, Clone)]
pub enum LinkModeration {
    /// The status was set (or the comment already had it); the link is used up.
    Done(Box<Moderated>),
    /// The link was used before: nothing changed.
    Used,
    /// No such comment (deleted): nothing changed, the link is not used up.
    NoComment,
}

/// The outcome of confirming a subscription by link.
#[derive(Debug, Clone)]
pub enum SubscriptionConfirmation {
    /// Confirmed; `confirmed` counts the subscriptions of the address that
    /// this confirmed (the named one, if it was not confirmed yet, and every
    /// other pending one of the same address).
    Confirmed {
        subscription: SubscriptionRecord,
        confirmed: u64,
    },
    /// The link was used before: nothing changed.
    Used,
    /// No such subscription, ended, or not the address's: nothing changed.
    NotFound,
}

/// A reader's request for reply mail, named by its comment's id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionRecord {
    pub comment_id: CommentId,
    pub uri: String,
    pub email: String,
    pub created_at: OffsetDateTime,
    /// Set by the double opt-in; nothing but the confirmation mail goes out before.
    pub confirmed_at: Option<OffsetDateTime>,
    /// Set when the reader unsubscribed.
    pub ended_at: Option<OffsetDateTime>,
}

impl SubscriptionRecord {
    /// True when `email` may act on it: it is that address's and not ended.
    pub fn is_active_for(&self, email: &str) -> bool {
        self.email == email && self.ended_at.is_none()
    }
}

/// Records a link's nonce as used, in the transaction of `$connection`:
/// `Ok(false)` when it was recorded before (the link is used up; the caller
/// must then change nothing). A macro because it runs on either backend's
/// connection type (see `in_transaction!`).
macro_rules! record_use {
    ($connection:ident, $nonce:expr, $now:expr) => {
        sqlx::query("INSERT INTO used_links (nonce, used_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING")
            .bind($nonce)
            .bind($now)
            .execute(&mut *$connection)
            .await
            .map(|done| done.rows_affected() == 1)
    };
}

impl Store {
    /// True when a link with this nonce has been used.
    pub async fn link_used(&self, nonce: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM used_links WHERE nonce = $1"
        )
        .bind(nonce)
        .fetch_one(pool)
        .await
        .map(|count: i64| count > 0))
    }

    /// Sets a comment's status for a one-click link, in one transaction:
    /// refused when the comment is gone (nothing recorded, so the link still
    /// says "gone" rather than "used"); refused when the nonce was used
    /// before; otherwise the nonce is recorded and the status set exactly as
    /// [`Store::set_status`] sets it (event and thread change included).
    pub async fn moderate_by_link(
        &self,
        id: CommentId,
        status: Status,
        moderator: &str,
        nonce: &str,
    ) -> Result<LinkModeration, StoreError> {
        let now = now();
        // IMMEDIATE: SQLite takes the write lock first, so the existence
        // check and the writes see one state. On PostgreSQL a concurrent use
        // of the same nonce waits on the key and then inserts nothing.
        in_transaction!(self, sqlite_begin: "BEGIN IMMEDIATE", |backend, connection| {
            let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *connection)
                .await?;
            if exists == 0 {
                return Ok(LinkModeration::NoComment);
            }
            if !record_use!(connection, nonce, now)? {
                return Ok(LinkModeration::Used);
            }
            match set_status_in_transaction!(backend, connection, id, status, moderator, now) {
                Some(moderated) => Ok(LinkModeration::Done(Box::new(moderated))),
                // Deleted since the check (PostgreSQL): roll the nonce back.
                None => Err(sqlx::Error::RowNotFound),
            }
        })
        .or_else(|error| match error {
            StoreError::Other(sqlx::Error::RowNotFound) => Ok(LinkModeration::NoComment),
            other => Err(other),
        })
    }

    /// The subscription named by its comment's id, whatever its state.
    pub async fn subscription(
        &self,
        comment_id: CommentId,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        on_pool!(self, pool => sqlx::query_as::<_, SubscriptionRecord>(
            "SELECT comment_id, uri, email, created_at, confirmed_at, ended_at \
             FROM subscriptions WHERE comment_id = $1"
        )
        .bind(comment_id)
        .fetch_optional(pool)
        .await)
    }

    /// Confirms the subscription `comment_id` of `email` for a one-click
    /// link, in one transaction with the link's use. Confirming proves that
    /// the reader reads that address, so every other pending (unconfirmed,
    /// not ended) subscription of the same address is confirmed with it.
    pub async fn confirm_subscription(
        &self,
        comment_id: CommentId,
        email: &str,
        nonce: &str,
    ) -> Result<SubscriptionConfirmation, StoreError> {
        let now = now();
        in_transaction!(self, sqlite_begin: "BEGIN IMMEDIATE", |_backend, connection| {
            let subscription = sqlx::query_as::<_, SubscriptionRecord>(
                "SELECT comment_id, uri, email, created_at, confirmed_at, ended_at \
                 FROM subscriptions WHERE comment_id = $1",
            )
            .bind(comment_id)
            .fetch_optional(&mut *connection)
            .await?;
            let Some(subscription) = subscription.filter(|s| s.is_active_for(email)) else {
                return Ok(SubscriptionConfirmation::NotFound);
            };
            if !record_use!(connection, nonce, now)? {
                return Ok(SubscriptionConfirmation::Used);
            }
            let confirmed = sqlx::query(
                "UPDATE subscriptions SET confirmed_at = $2 \
                 WHERE email = $1 AND confirmed_at IS NULL AND ended_at IS NULL",
            )
            .bind(email)
            .bind(now)
            .execute(&mut *connection)
            .await?
            .rows_affected();
            Ok(SubscriptionConfirmation::Confirmed {
                subscription,
                confirmed,
            })
        })
    }

    /// Ends every subscription of `email` on the thread of its subscription
    /// `comment_id`. `None` when that subscription is not the address's (or
    /// is gone with its comment); otherwise how many were ended now (0 when
    /// they had ended already: repeating is harmless and keeps the first
    /// end time).
    pub async fn end_thread_subscriptions(
        &self,
        comment_id: CommentId,
        email: &str,
    ) -> Result<Option<u64>, StoreError> {
        let now = now();
        in_transaction!(self, |connection| {
            let uri: Option<String> =
                sqlx::query_scalar("SELECT uri FROM subscriptions WHERE comment_id = $1 AND email = $2")
                    .bind(comment_id)
                    .bind(email)
                    .fetch_optional(&mut *connection)
                    .await?;
            let Some(uri) = uri else {
                return Ok(None);
            };
            let ended = sqlx::query(
                "UPDATE subscriptions SET ended_at = $3 \
                 WHERE email = $1 AND uri = $2 AND ended_at IS NULL",
            )
            .bind(email)
            .bind(&uri)
            .bind(now)
            .execute(&mut *connection)
            .await?
            .rows_affected();
            Ok(Some(ended))
        })
    }

    /// Ends every subscription of `email`; how many were ended now.
    pub async fn end_all_subscriptions(&self, email: &str) -> Result<u64, StoreError> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "UPDATE subscriptions SET ended_at = $2 WHERE email = $1 AND ended_at IS NULL"
        )
        .bind(email)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
    }
}
