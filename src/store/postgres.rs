//! The PostgreSQL backend, for sites that run several instances behind a load
//! balancer. Every statement is atomic on its own, so instances need no
//! coordination beyond the database; a change to what a thread shows bumps
//! its version and notifies every instance (`LISTEN/NOTIFY`).
//!
//! Only what differs from SQLite is here: the statements both run are in the
//! subject modules of `store`.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use super::{ImportComment, StoreChange, StoreError};
use crate::domain::CommentId;

/// The PostgreSQL migrations, embedded.
pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(super) pool: PgPool,
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

    /// Closes the pool, waiting for connections to be returned.
    pub(super) async fn close(&self) {
        self.pool.close().await;
    }

    /// The approved comments among `ids`: id → uri. FOR SHARE: a parent
    /// cannot be unpublished before the transaction reading it commits.
    pub(super) async fn approved_parents(
        &self,
        connection: &mut PgConnection,
        ids: &[CommentId],
    ) -> Result<Vec<(CommentId, String)>, sqlx::Error> {
        sqlx::query_as("SELECT id, uri FROM comments WHERE status = 'approved' AND id = ANY($1) FOR SHARE")
            .bind(ids)
            .fetch_all(connection)
            .await
    }

    /// Approved comments per uri (uris without any are absent).
    pub(super) async fn approved_counts(&self, uris: &[&str]) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT uri, COUNT(*) FROM comments WHERE status = 'approved' AND uri = ANY($1) GROUP BY uri",
        )
        .bind(uris)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)
    }

    /// Bumps the thread's version and notifies every instance, inside the
    /// transaction of the change: the notification goes out only if it commits.
    pub(super) async fn announce_thread_change(
        &self,
        connection: &mut PgConnection,
        uri: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO thread_versions (uri, version) VALUES ($1, 1) \
             ON CONFLICT (uri) DO UPDATE SET version = thread_versions.version + 1",
        )
        .bind(uri)
        .execute(&mut *connection)
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(uri)
            .execute(&mut *connection)
            .await?;
        Ok(())
    }

    /// Takes the transaction-scoped advisory lock `key` if no other session
    /// holds it: `false` means another instance is doing that job now. The
    /// lock ends with the transaction, even if the instance dies.
    pub(super) async fn try_job_lock(
        &self,
        connection: &mut PgConnection,
        key: i64,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(key)
            .fetch_one(connection)
            .await
    }

    /// Notifies every instance that the moderation rules changed, inside the
    /// transaction of the change.
    pub(super) async fn announce_rules_change(
        &self,
        connection: &mut PgConnection,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(RULES_CHANNEL)
            .execute(&mut *connection)
            .await?;
        Ok(())
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
        listener.listen_all([CHANGES_CHANNEL, RULES_CHANNEL]).await?;
        on_change(StoreChange::Listening);
        loop {
            match listener.try_recv().await? {
                Some(notification) if notification.channel() == RULES_CHANNEL => {
                    on_change(StoreChange::Rules)
                }
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

    pub(super) async fn bulk_import(&self, comments: &[ImportComment]) -> Result<u64, StoreError> {
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

    /// Runs `work` in a transaction and commits it (a failure rolls it back
    /// when the transaction is dropped).
    pub(super) async fn transaction<T>(
        &self,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        async {
            let mut tx = self.pool.begin().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        }
        .await
        .map_err(classify)
    }
}

/// The notification channel of thread changes.
const CHANGES_CHANNEL: &str = "marginalia_threads";
/// The notification channel of changes to the moderation rules.
const RULES_CHANNEL: &str = "marginalia_rules";

/// SQLSTATE classes that mean "the database cannot take this right now":
/// connection exceptions (08), insufficient resources (53, e.g. a full disk
/// or too many connections), operator intervention such as a shutdown (57:
/// 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now),
/// and a read-only transaction (25006, a standby).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57") || code == "25006"
}

/// Splits PostgreSQL's errors into "try again later" and "a bug".
pub(super) fn classify(error: sqlx::Error) -> StoreError {
    StoreError::classify(error, |error| match error {
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        // The connection to the server broke.
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        _ => false,
    })
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
