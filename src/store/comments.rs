//! The statements about comments: inserting submissions, the public thread and
//! its counts, the moderation list and actions, and the figures moderators see.
//! Each is written once for both backends (see the module header of `store`).

use std::collections::{BTreeSet, HashMap};

use sqlx::QueryBuilder;

use super::outbox::encode_deleted;
use super::{
    Admission, ImportComment, Inserted, Moderated, ModerationPage, ModerationQuery, Store, StoreError,
    ThreadPage, ThreadRow, Writing, duplicate_key, fetch_limit, match_inserted, now, parent_is_valid,
    split_page,
};
use crate::domain::{Comment, CommentId, NewComment, Status, ThreadUri};
use crate::notify::webhook::WebhookEvent;

impl Store {
    /// Stores a comment with the status the caller decided. `None` when its
    /// parent is not an approved comment of the same thread (checked in the
    /// same transaction as the insert, so a parent rejected meanwhile cannot
    /// slip through). The service goes through [`super::InsertBatcher`]
    /// instead, which commits many at once.
    pub async fn insert_comment(
        &self,
        comment: &NewComment,
        status: Status,
        writing: impl Into<Writing>,
    ) -> Result<Option<Comment>, StoreError> {
        Ok(self
            .insert_comments(&[(comment, status)], writing)
            .await?
            .pop()
            .flatten())
    }

    /// Stores comments, each with its status, in one transaction and one
    /// statement: one commit (one fsync) for all of them, and few round trips,
    /// since every round trip waits for a busy scheduler. One result per
    /// comment, `None` for a comment whose parent is not an approved comment
    /// of its thread. Nothing records a moderator for an insert, even an
    /// approved one; an approved insert announces its thread's change like an
    /// approval does. With `record_events` (notifications are configured),
    /// each stored comment's notification event is written in the same
    /// transaction; with `check_akismet` (Akismet is configured), each
    /// pending comment's Akismet check.
    pub async fn insert_comments(
        &self,
        comments: &[(&NewComment, Status)],
        writing: impl Into<Writing>,
    ) -> Result<Vec<Option<Comment>>, StoreError> {
        let admissions: Vec<Admission> = comments
            .iter()
            .map(|&(_, status)| Admission::plain(status))
            .collect();
        let items: Vec<(&NewComment, &Admission)> = comments
            .iter()
            .zip(&admissions)
            .map(|(&(comment, _), admission)| (comment, admission))
            .collect();
        Ok(self
            .insert_admitted(&items, writing)
            .await?
            .into_iter()
            .map(Inserted::stored)
            .collect())
    }

    /// Stores submissions as [`Store::insert_comments`] does, each with what
    /// the moderation rules decided: its status, reasons and (for a rule's
    /// decision) `moderated_by` with the time. With `refuse_duplicate`, a
    /// comment whose duplicate key is taken — by a stored comment or by an
    /// earlier one of the same batch — is skipped by the insert itself
    /// (`ON CONFLICT DO NOTHING` on a unique index), so two identical
    /// submissions racing each other store one. A comment that lands in
    /// spam records its event as not wanting replies: no confirmation mail
    /// goes to an address a bot typed.
    pub async fn insert_admitted(
        &self,
        comments: &[(&NewComment, &Admission)],
        writing: impl Into<Writing>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let Writing {
            record_events,
            check_akismet,
        } = writing.into();
        let now = now();
        let parent_ids: Vec<CommentId> = comments
            .iter()
            .filter_map(|(comment, _)| comment.parent_id)
            .collect();
        // IMMEDIATE: take SQLite's write lock first, so the parent check and
        // the insert see the same state (a deferred transaction could fail to
        // upgrade if a moderation commit slipped in between). PostgreSQL
        // locks the parents it reads instead.
        in_transaction!(self, sqlite_writer_begin: "BEGIN IMMEDIATE", |backend, connection| {
            let approved_parents: HashMap<CommentId, String> = if parent_ids.is_empty() {
                HashMap::new()
            } else {
                backend.approved_parents(connection, &parent_ids).await?.into_iter().collect()
            };
            let accepted: Vec<&(&NewComment, &Admission)> = comments
                .iter()
                .filter(|(comment, _)| parent_is_valid(comment, &approved_parents))
                .collect();
            let rows: Vec<Comment> = if accepted.is_empty() {
                Vec::new()
            } else {
                let mut sql = QueryBuilder::new(
                    "INSERT INTO comments (uri, parent_id, name, email, website, body, body_html, status, \
                     created_at, ip, user_agent, lang, reasons, moderated_by, moderated_at, dedup_key, \
                     spam_score, spam_clues) ",
                );
                sql.push_values(accepted, |mut row, &(comment, admission)| {
                    let status = admission.status;
                    row.push_bind(comment.uri.as_str())
                        .push_bind(comment.parent_id)
                        .push_bind(comment.name.as_str())
                        .push_bind(comment.email.as_str())
                        .push_bind(comment.website.as_ref().map(|w| w.as_str()))
                        .push_bind(comment.body.markdown())
                        .push_bind(comment.body.html())
                        .push_bind(status.as_str())
                        .push_bind(now)
                        .push_bind(comment.ip.as_deref())
                        .push_bind(comment.user_agent.as_deref())
                        .push_bind(comment.lang.as_ref().map(|lang| lang.as_str()))
                        .push_bind(admission.reasons.to_json())
                        .push_bind(admission.moderated_by.as_deref())
                        .push_bind(admission.moderated_by.as_ref().map(|_| now))
                        .push_bind(admission.refuse_duplicate.then(|| duplicate_key(comment)))
                        .push_bind(admission.spam_score)
                        .push_bind(admission.spam_clues.to_json());
                });
                sql.push(concat!(
                    " ON CONFLICT (dedup_key) DO NOTHING RETURNING ",
                    comment_columns!()
                ));
                sql.build_query_as::<Comment>().fetch_all(&mut *connection).await?
            };
            // Sorted: concurrent batches then bump their threads' versions
            // in the same order, and cannot deadlock on each other's rows.
            let published: BTreeSet<&str> = rows
                .iter()
                .filter(|row| row.status == Status::Approved)
                .map(|row| row.uri.as_str())
                .collect();
            for uri in published {
                backend.announce_thread_change(connection, uri).await?;
            }
            let stored = match_inserted(comments, &approved_parents, rows);
            if record_events {
                // One statement for the whole batch: on SQLite every statement
                // is a round trip to sqlx's worker thread, and one per comment
                // cost a third of the submission throughput.
                let events: Vec<(&Comment, bool)> = comments
                    .iter()
                    .zip(&stored)
                    .filter_map(|((submission, _), inserted)| match inserted {
                        Inserted::Stored(comment) => {
                            Some((comment, submission.wants_replies && comment.status != Status::Spam))
                        }
                        _ => None,
                    })
                    .collect();
                if !events.is_empty() {
                    let mut sql = QueryBuilder::new(
                        "INSERT INTO notification_events (event, submitted, wants_replies, comment_id, created_at) ",
                    );
                    sql.push_values(events, |mut row, (comment, wants_replies)| {
                        row.push_bind(WebhookEvent::for_status(comment.status).as_str())
                            .push_bind(true)
                            .push_bind(wants_replies)
                            .push_bind(comment.id)
                            .push_bind(now);
                    });
                    sql.build().execute(&mut *connection).await?;
                }
            }
            if check_akismet {
                // Only comments still waiting for a moderator: one a rule
                // already sent to spam needs no third party's opinion.
                let checks: Vec<(&Comment, Option<&str>)> = comments
                    .iter()
                    .zip(&stored)
                    .filter_map(|((submission, _), inserted)| match inserted {
                        Inserted::Stored(comment) if comment.status == Status::Pending => {
                            Some((comment, submission.referrer.as_deref()))
                        }
                        _ => None,
                    })
                    .collect();
                if !checks.is_empty() {
                    let mut sql =
                        QueryBuilder::new("INSERT INTO akismet_checks (comment_id, referrer, created_at) ");
                    sql.push_values(checks, |mut row, (comment, referrer)| {
                        row.push_bind(comment.id).push_bind(referrer).push_bind(now);
                    });
                    sql.build().execute(&mut *connection).await?;
                }
            }
            Ok(stored)
        })
    }

    /// Approved comments of a thread, oldest first, after the cursor.
    pub async fn approved_thread(
        &self,
        uri: &ThreadUri,
        after: Option<CommentId>,
        limit: u32,
    ) -> Result<ThreadPage, StoreError> {
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ThreadRow>(
            "SELECT c.id, CASE WHEN p.id IS NULL THEN NULL ELSE c.parent_id END AS parent_id, \
                    c.name, c.website, c.body_html, c.created_at, \
                    (SELECT COUNT(*) FROM comments WHERE uri = $1 AND status = 'approved') AS total \
             FROM comments c \
             LEFT JOIN comments p ON p.id = c.parent_id AND p.status = 'approved' \
             WHERE c.uri = $1 AND c.status = 'approved' AND c.id > $2 \
             ORDER BY c.id LIMIT $3",
        )
        .bind(uri.as_str())
        .bind(after.unwrap_or(0))
        .bind(fetch_limit(limit))
        .fetch_all(pool)
        .await)?;
        if let Some(page) = ThreadPage::from_rows(rows, limit, after) {
            return Ok(page);
        }
        // A page past the end: count on its own.
        let total = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM comments WHERE uri = $1 AND status = 'approved'"
        )
        .bind(uri.as_str())
        .fetch_one(pool)
        .await)?;
        Ok(ThreadPage {
            total,
            comments: Vec::new(),
            next: None,
        })
    }

    /// Approved comments per uri; uris without any are absent from the map.
    pub async fn approved_counts(&self, uris: &[ThreadUri]) -> Result<HashMap<String, i64>, StoreError> {
        let uris: Vec<&str> = uris.iter().map(ThreadUri::as_str).collect();
        let rows = on_backend!(self, backend => backend.approved_counts(&uris).await)?;
        Ok(rows.into_iter().collect())
    }

    /// The moderation list: one status, optionally one thread, keyset-paged.
    pub async fn moderation_list(&self, query: &ModerationQuery) -> Result<ModerationPage, StoreError> {
        if query.by_score {
            return self.moderation_list_by_score(query).await;
        }
        let (compare, order) = if query.newest_first() {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let mut comments = on_pool!(self, pool => {
            let mut sql = QueryBuilder::new(concat!(
                "SELECT ",
                comment_columns!(),
                " FROM comments WHERE status = "
            ));
            sql.push_bind(query.status.as_str());
            if let Some(uri) = &query.uri {
                sql.push(" AND uri = ").push_bind(uri.as_str());
            }
            if let Some(after) = query.after {
                sql.push(format_args!(" AND id {compare} ")).push_bind(after);
            }
            sql.push(format_args!(" ORDER BY id {order} LIMIT "))
                .push_bind(fetch_limit(query.limit));
            sql.build_query_as::<Comment>().fetch_all(pool).await
        })?;
        let next = split_page(&mut comments, query.limit, |c| c.id);
        Ok(ModerationPage { comments, next })
    }

    /// The moderation list by score: `spam_score` ascending with unscored
    /// comments last, then by id; keyset-paged on (score, id), the cursor
    /// being the id of the last comment shown (its score is looked up).
    async fn moderation_list_by_score(&self, query: &ModerationQuery) -> Result<ModerationPage, StoreError> {
        let mut comments = on_pool!(self, pool => {
            let mut sql = QueryBuilder::new(concat!(
                "SELECT ",
                comment_columns!(),
                " FROM comments WHERE status = "
            ));
            sql.push_bind(query.status.as_str());
            if let Some(uri) = &query.uri {
                sql.push(" AND uri = ").push_bind(uri.as_str());
            }
            if let Some(after) = query.after {
                // After (s, id): a higher score, the same score and a higher
                // id, or no score; after an unscored one, unscored ones with
                // a higher id.
                let cursor = "(SELECT spam_score FROM comments WHERE id = ";
                sql.push(" AND (")
                    .push(cursor).push_bind(after).push(") IS NULL AND spam_score IS NULL AND id > ").push_bind(after)
                    .push(" OR ").push(cursor).push_bind(after).push(") IS NOT NULL AND (spam_score IS NULL OR spam_score > ")
                    .push(cursor).push_bind(after).push(") OR (spam_score = ")
                    .push(cursor).push_bind(after).push(") AND id > ").push_bind(after).push(")))");
            }
            sql.push(" ORDER BY spam_score ASC NULLS LAST, id ASC LIMIT ")
                .push_bind(fetch_limit(query.limit));
            sql.build_query_as::<Comment>().fetch_all(pool).await
        })?;
        let next = split_page(&mut comments, query.limit, |c| c.id);
        Ok(ModerationPage { comments, next })
    }

    /// True when a comment with this name (exactly) and email (case
    /// ignored) is approved: the author is known (`MARGINALIA_MODERATION=known`).
    /// One probe of the `comments_author` index.
    pub async fn is_known_author(&self, name: &str, email: &str) -> Result<bool, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM comments \
             WHERE lower(email) = lower($1) AND status = 'approved' AND name = $2)"
        )
        .bind(email)
        .bind(name)
        .fetch_one(pool)
        .await)
    }

    /// The distinct name and email of every approved comment, as stored:
    /// what `spam::known_authors` loads (in the background; it reads every
    /// approved comment).
    pub async fn approved_authors(&self) -> Result<Vec<(String, String)>, StoreError> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT name, email FROM comments WHERE status = 'approved'"
        )
        .fetch_all(pool)
        .await)
    }

    /// Deletes every comment with `status` (emptying the spam folder): each
    /// deletion is recorded like a single one (its thread announced, its
    /// `comment.deleted` event written), all in one transaction. Returns how
    /// many went.
    pub async fn delete_with_status(&self, status: Status) -> Result<u64, StoreError> {
        let now = now();
        in_transaction!(self, |backend, connection| {
            let deleted = sqlx::query_as::<_, Comment>(concat!(
                "DELETE FROM comments WHERE status = $1 RETURNING ",
                comment_columns!()
            ))
            .bind(status.as_str())
            .fetch_all(&mut *connection)
            .await?;
            let uris: BTreeSet<&str> = deleted.iter().map(|comment| comment.uri.as_str()).collect();
            for uri in uris {
                backend.announce_thread_change(connection, uri).await?;
            }
            for comment in &deleted {
                record_event!(
                    connection,
                    WebhookEvent::Deleted,
                    comment.id,
                    Some(encode_deleted(comment)?),
                    now
                );
            }
            Ok(deleted.len() as u64)
        })
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
        let now = now();
        in_transaction!(self, |backend, connection| {
            Ok(set_status_in_transaction!(
                backend, connection, id, status, moderator, now
            ))
        })
    }

    /// Deletes a comment for good; its replies stay (their `parent_id` is
    /// cleared by the foreign key). Returns its thread's uri; `None` for an unknown id.
    pub async fn delete_comment(&self, id: CommentId) -> Result<Option<String>, StoreError> {
        let now = now();
        in_transaction!(self, |backend, connection| {
            let deleted = sqlx::query_as::<_, Comment>(concat!(
                "DELETE FROM comments WHERE id = $1 RETURNING ",
                comment_columns!()
            ))
            .bind(id)
            .fetch_optional(&mut *connection)
            .await?;
            let Some(comment) = deleted else {
                return Ok(None);
            };
            backend.announce_thread_change(connection, &comment.uri).await?;
            record_event!(
                connection,
                WebhookEvent::Deleted,
                comment.id,
                Some(encode_deleted(&comment)?),
                now
            );
            Ok(Some(comment.uri))
        })
    }

    /// How many comments await moderation.
    pub async fn pending_count(&self) -> Result<i64, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE status = 'pending'")
            .fetch_one(pool)
            .await)
    }

    /// One comment with everything a moderator sees.
    pub async fn comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        on_pool!(self, pool => sqlx::query_as::<_, Comment>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await)
    }

    /// The comments with these ids that still exist, by id.
    pub async fn comments_by_ids(
        &self,
        ids: &[CommentId],
    ) -> Result<HashMap<CommentId, Comment>, StoreError> {
        let mut found = HashMap::with_capacity(ids.len());
        // Chunked: a statement takes a bounded number of parameters.
        for chunk in ids.chunks(1000) {
            let rows = on_pool!(self, pool => {
                let mut sql = QueryBuilder::new(concat!("SELECT ", comment_columns!(), " FROM comments WHERE id IN ("));
                let mut list = sql.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                sql.push(")");
                sql.build_query_as::<Comment>().fetch_all(pool).await
            })?;
            found.extend(rows.into_iter().map(|comment| (comment.id, comment)));
        }
        Ok(found)
    }

    /// How many comments have each status (statuses without any are absent).
    pub async fn status_counts(&self) -> Result<HashMap<Status, i64>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT status, COUNT(*) FROM comments GROUP BY status"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(status, count)| status.parse::<Status>().ok().map(|status| (status, count)))
            .collect())
    }

    /// Inserts many comments in one transaction (SQLite: one prepared
    /// statement; PostgreSQL: `COPY`). Returns how many were inserted.
    pub async fn bulk_import(&self, comments: &[ImportComment]) -> Result<u64, StoreError> {
        on_backend!(self, backend => backend.bulk_import(comments).await)
    }
}
