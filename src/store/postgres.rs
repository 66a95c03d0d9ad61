//! The PostgreSQL backend, for sites that run several instances behind a load
//! balancer. Every statement is atomic on its own, so instances need no
//! coordination beyond the database.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;

use super::{
    ImportComment, Moderated, ModerationPage, ModerationQuery, SessionRecord, StoreChange, StoreError,
    ThreadPage, ThreadRow, TokenInsertError, TokenRecord, fetch_limit, match_inserted, parent_is_valid,
    split_page,
};
use crate::domain::{Comment, CommentId, NewComment, Status, ThreadUri};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The columns of [`Comment`], in one place for every moderator query.
macro_rules! comment_columns {
    () => {
        "id, uri, parent_id, name, email, website, body, body_html, status, created_at, \
         moderated_at, moderated_by, ip, user_agent"
    };
}

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url).context("parsing the PostgreSQL database URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // When the database is away, fail a request within seconds (503)
            // instead of letting it hang; the pool reconnects by itself later.
            // A submission may wait out a failing batch before its own, so
            // this is at most half of the 5 s a refusal may take
            // (tests/resilience/pg_outage.rs).
            .acquire_timeout(Duration::from_secs(2))
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        // sqlx takes an advisory lock, so instances starting together migrate once.
        MIGRATOR
            .run(&self.pool)
            .await
            .context("applying the PostgreSQL migrations")
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
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let parent_ids: Vec<CommentId> = comments.iter().filter_map(|comment| comment.parent_id).collect();
        let approved_parents: HashMap<CommentId, String> = if parent_ids.is_empty() {
            HashMap::new()
        } else {
            // FOR SHARE: a parent cannot be unpublished before this commits.
            sqlx::query_as::<_, (CommentId, String)>(
                "SELECT id, uri FROM comments WHERE status = 'approved' AND id = ANY($1) FOR SHARE",
            )
            .bind(&parent_ids)
            .fetch_all(&mut *tx)
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
            let mut sql = QueryBuilder::<Postgres>::new(
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
                .fetch_all(&mut *tx)
                .await
                .map_err(classify)?
        };
        tx.commit().await.map_err(classify)?;
        Ok(match_inserted(comments, &approved_parents, rows))
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
                    (SELECT COUNT(*) FROM comments WHERE uri = $1 AND status = 'approved') AS total \
             FROM comments c \
             LEFT JOIN comments p ON p.id = c.parent_id AND p.status = 'approved' \
             WHERE c.uri = $1 AND c.status = 'approved' AND c.id > $2 \
             ORDER BY c.id LIMIT $3",
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
            sqlx::query_scalar("SELECT COUNT(*) FROM comments WHERE uri = $1 AND status = 'approved'")
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
        let uris: Vec<&str> = uris.iter().map(ThreadUri::as_str).collect();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT uri, COUNT(*) FROM comments \
             WHERE status = 'approved' AND uri = ANY($1) \
             GROUP BY uri",
        )
        .bind(uris)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows.into_iter().collect())
    }

    pub async fn moderation_list(&self, query: &ModerationQuery) -> Result<ModerationPage, StoreError> {
        let mut sql = QueryBuilder::<Postgres>::new(concat!(
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
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let updated = sqlx::query_as::<_, Comment>(concat!(
            "UPDATE comments SET status = $2, moderated_by = $3, moderated_at = $4 \
             WHERE id = $1 AND status <> $2 RETURNING ",
            comment_columns!()
        ))
        .bind(id)
        .bind(status.as_str())
        .bind(moderator)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        if let Some(comment) = updated {
            announce_thread_change(&mut tx, &comment.uri).await?;
            tx.commit().await.map_err(classify)?;
            return Ok(Some(Moderated {
                comment,
                changed: true,
            }));
        }
        tx.rollback().await.map_err(classify)?;
        let existing = sqlx::query_as::<_, Comment>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = $1"
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
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let uri: Option<String> = sqlx::query_scalar("DELETE FROM comments WHERE id = $1 RETURNING uri")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
        if let Some(uri) = &uri {
            announce_thread_change(&mut tx, uri).await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(uri)
    }

    /// Reports changes made by any instance until the task is dropped:
    /// [`StoreChange::Listening`] whenever the listener is (re)connected (so the
    /// caller can drop what it may have missed), [`StoreChange::Thread`] per
    /// change, [`StoreChange::Lost`] when the connection goes.
    pub async fn listen_for_changes(&self, mut on_change: impl FnMut(StoreChange)) {
        loop {
            match self.listen_until_error(&mut on_change).await {
                Ok(()) => return,
                Err(error) => {
                    on_change(StoreChange::Lost);
                    tracing::warn!(%error, "change listener failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn listen_until_error(&self, on_change: &mut impl FnMut(StoreChange)) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        on_change(StoreChange::Listening);
        loop {
            match listener.try_recv().await? {
                Some(notification) => on_change(StoreChange::Thread(notification.payload().to_owned())),
                // The connection dropped and the listener reconnected (it
                // re-subscribes by itself): whatever was sent meanwhile is lost.
                None => {
                    on_change(StoreChange::Lost);
                    on_change(StoreChange::Listening);
                }
            }
        }
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
        sqlx::query("INSERT INTO moderator_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)")
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
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let result = sqlx::query("DELETE FROM moderator_tokens WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        sqlx::query("DELETE FROM moderator_sessions WHERE moderator = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(result.rows_affected() > 0)
    }

    pub async fn comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        sqlx::query_as::<_, Comment>(concat!(
            "SELECT ",
            comment_columns!(),
            " FROM comments WHERE id = $1"
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
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query("DELETE FROM moderator_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        sqlx::query(
            "INSERT INTO moderator_sessions (id_hash, moderator, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(moderator)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query_as("SELECT moderator, csrf_token, expires_at FROM moderator_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(classify)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM moderator_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub async fn bulk_import(&self, comments: &[ImportComment]) -> Result<u64, StoreError> {
        let mut connection = self.pool.acquire().await.map_err(classify)?;
        let mut copy = connection
            .copy_in_raw(
                "COPY comments (uri, name, email, website, body, body_html, status, created_at) \
                 FROM STDIN (FORMAT csv)",
            )
            .await
            .map_err(classify)?;
        let mut chunk = String::with_capacity(1 << 20);
        for comment in comments {
            let created_at = comment
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|error| StoreError::Other(sqlx::Error::Encode(error.into())))?;
            let fields = [
                Some(comment.uri.as_str()),
                Some(comment.name.as_str()),
                Some(comment.email.as_str()),
                comment.website.as_deref(),
                Some(comment.body.as_str()),
                Some(comment.body_html.as_str()),
                Some(comment.status.as_str()),
                Some(created_at.as_str()),
            ];
            for (index, field) in fields.iter().enumerate() {
                if index > 0 {
                    chunk.push(',');
                }
                // CSV: an unquoted empty field is NULL, a quoted one a string.
                if let Some(value) = field {
                    chunk.push('"');
                    chunk.push_str(&value.replace('"', "\"\""));
                    chunk.push('"');
                }
            }
            chunk.push('\n');
            if chunk.len() > (1 << 20) {
                copy.send(chunk.as_bytes()).await.map_err(classify)?;
                chunk.clear();
            }
        }
        copy.send(chunk.as_bytes()).await.map_err(classify)?;
        copy.finish().await.map_err(classify)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The notification channel of thread changes.
const CHANGES_CHANNEL: &str = "marginalia_threads";

/// Bumps the thread's version and notifies every instance, inside the
/// transaction of the change: the notification goes out only if it commits.
async fn announce_thread_change(tx: &mut sqlx::PgConnection, uri: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO thread_versions (uri, version) VALUES ($1, 1) \
         ON CONFLICT (uri) DO UPDATE SET version = thread_versions.version + 1",
    )
    .bind(uri)
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(uri)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    Ok(())
}

/// SQLSTATE classes that mean "the database cannot take this right now":
/// connection exceptions (08), insufficient resources (53, e.g. a full disk
/// or too many connections), operator intervention such as a shutdown (57:
/// 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now),
/// and a read-only transaction (25006, a standby).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57") || code == "25006"
}

fn classify(error: sqlx::Error) -> StoreError {
    let unavailable = match &error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
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
    use super::is_unavailable_sqlstate;

    #[test]
    fn lost_connections_shutdowns_and_full_disks_are_unavailable_and_bugs_are_not() {
        for code in [
            "08000", "08001", "08006", "57P01", "57P02", "57P03", "53100", "53300", "25006",
        ] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        // unique violation, undefined table, value too long, syntax error.
        for code in ["23505", "42P01", "22001", "42601"] {
            assert!(!is_unavailable_sqlstate(code), "{code}");
        }
    }
}
