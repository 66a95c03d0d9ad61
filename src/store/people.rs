//! The statements behind readers' data rights (`src/people.rs`): everything
//! held about one address, and its erasure, by anonymizing or deleting its
//! comments. Written once for both backends (see `store`).
//!
//! An address is compared without regard to capitals (`LOWER` on both sides,
//! as the outbox budgets do; indexed by migration 12): `Maya@Reader.Example`
//! and `maya@reader.example` are one reader. An anonymized comment keeps an
//! empty email (the column is `NOT NULL`), and no valid address is ever
//! empty, so a look-up can never find those rows again.

use std::collections::BTreeSet;

use super::links::SubscriptionRecord;
use super::outbox::encode_deleted;
use super::{Store, StoreError, now};
use crate::domain::Comment;
use crate::notify::webhook::WebhookEvent;

/// The name an anonymized comment is shown under (as WordPress does).
pub const ANONYMOUS_NAME: &str = "Anonymous";

/// Everything the store holds about one address.
#[derive(Debug, Clone)]
pub struct PersonRecords {
    /// Every comment written with the address, in every status, oldest first.
    pub comments: Vec<Comment>,
    /// Its reply-mail subscriptions, confirmed or not, ended or not.
    pub subscriptions: Vec<SubscriptionRecord>,
}

/// What to do with an address's comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureMode {
    /// Keep the text; clear the name (to [`ANONYMOUS_NAME`]), email,
    /// website, IP and user agent.
    Anonymize,
    /// Delete the comments; their replies stay, as with a single deletion.
    Delete,
}

/// What an erasure changed, committed together.
#[derive(Debug, Clone, Default)]
pub struct ErasedRecords {
    /// Comments anonymized or deleted.
    pub comments: u64,
    /// Subscriptions removed.
    pub subscriptions: u64,
    /// Mails to the address removed from the outbox.
    pub mails: u64,
    /// The threads whose comments changed (sorted): their cached pages are stale.
    pub uris: BTreeSet<String>,
}

impl Store {
    /// Everything held about `email` (compared without regard to capitals).
    pub async fn person_records(&self, email: &str) -> Result<PersonRecords, StoreError> {
        let comments = on_pool!(self, pool => sqlx::query_as::<_, Comment>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE LOWER(email) = LOWER($1) ORDER BY id"
        ))
        .bind(email)
        .fetch_all(pool)
        .await)?;
        let subscriptions = on_pool!(self, pool => sqlx::query_as::<_, SubscriptionRecord>(
            "SELECT comment_id, uri, email, created_at, confirmed_at, ended_at \
             FROM subscriptions WHERE LOWER(email) = LOWER($1) ORDER BY comment_id"
        )
        .bind(email)
        .fetch_all(pool)
        .await)?;
        Ok(PersonRecords {
            comments,
            subscriptions,
        })
    }

    /// Erases `email` in one transaction: its comments anonymized (with
    /// `moderated_by` and `moderated_at` recording who did it and when) or
    /// deleted (each with a `comment.deleted` event, as a single deletion
    /// records, its copy stripped of email, IP and user agent), then its
    /// subscriptions and every mail to it in the outbox, sent or not, so
    /// nothing queued goes out afterwards. Every touched thread is announced
    /// to the other instances. Repeating it finds nothing: all zeros.
    pub async fn erase_person(
        &self,
        email: &str,
        mode: ErasureMode,
        moderator: &str,
    ) -> Result<ErasedRecords, StoreError> {
        let now = now();
        // IMMEDIATE: SQLite takes the write lock before the first statement,
        // so the transaction cannot fail to upgrade half-way.
        in_transaction!(self, sqlite_begin: "BEGIN IMMEDIATE", |backend, connection| {
            let mut erased = ErasedRecords::default();
            match mode {
                ErasureMode::Anonymize => {
                    // The learning filter's example of each comment lists its
                    // tokens, the name's words and the email's domain among
                    // them: it goes (what the filter counted stays, without
                    // a link to anyone), and so do the clues shown with the score.
                    sqlx::query(
                        "DELETE FROM classifier_examples WHERE comment_id IN \
                         (SELECT id FROM comments WHERE LOWER(email) = LOWER($1))",
                    )
                    .bind(email)
                    .execute(&mut *connection)
                    .await?;
                    let touched: Vec<(String,)> = sqlx::query_as(
                        "UPDATE comments SET name = $2, email = '', website = NULL, ip = NULL, \
                         user_agent = NULL, moderated_by = $3, moderated_at = $4, spam_clues = '[]' \
                         WHERE LOWER(email) = LOWER($1) RETURNING uri",
                    )
                    .bind(email)
                    .bind(ANONYMOUS_NAME)
                    .bind(moderator)
                    .bind(now)
                    .fetch_all(&mut *connection)
                    .await?;
                    erased.comments = touched.len() as u64;
                    erased.uris.extend(touched.into_iter().map(|(uri,)| uri));
                }
                ErasureMode::Delete => {
                    // Replies keep living: the foreign key clears their
                    // `parent_id`, as when one comment is deleted.
                    let deleted = sqlx::query_as::<_, Comment>(concat!(
                        "DELETE FROM comments WHERE LOWER(email) = LOWER($1) RETURNING ",
                        comment_columns!()
                    ))
                    .bind(email)
                    .fetch_all(&mut *connection)
                    .await?;
                    erased.comments = deleted.len() as u64;
                    for mut comment in deleted {
                        // The event's copy outlives the comment until it is
                        // handled; webhooks never carry these fields anyway.
                        comment.email.clear();
                        comment.ip = None;
                        comment.user_agent = None;
                        record_event!(
                            connection,
                            WebhookEvent::Deleted,
                            comment.id,
                            Some(encode_deleted(&comment)?),
                            now
                        );
                        erased.uris.insert(comment.uri);
                    }
                }
            }
            erased.subscriptions = sqlx::query("DELETE FROM subscriptions WHERE LOWER(email) = LOWER($1)")
                .bind(email)
                .execute(&mut *connection)
                .await?
                .rows_affected();
            erased.mails = sqlx::query(
                "DELETE FROM outbox WHERE LOWER(recipient) = LOWER($1) AND kind <> 'webhook'",
            )
            .bind(email)
            .execute(&mut *connection)
            .await?
            .rows_affected();
            // Sorted (a BTreeSet): concurrent transactions bump versions in
            // the same order and cannot deadlock on each other's rows.
            for uri in &erased.uris {
                backend.announce_thread_change(connection, uri).await?;
            }
            Ok(erased)
        })
    }
}
