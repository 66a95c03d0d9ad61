//! The statements of the notification outbox (`notification_events`,
//! `outbox`, `digest_batches`, the creation of `subscriptions`): recording an
//! event inside the transaction of the change it reports, claiming events and
//! deliveries so that each is handled by one instance, and recording how a
//! delivery went. Written once for both backends (see `store`); only the row
//! lock of a claim differs (`with_row_lock!`).
//!
//! What the events mean and what is delivered for each is decided in
//! `crate::outbox`; this module only keeps the rows.

use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::{Store, StoreError, now};
use crate::domain::{Comment, CommentId};
use crate::notify::webhook::WebhookEvent;

/// An event claimed for handling. It names its comment rather than copying
/// it: the row written with every submission stays a few dozen bytes, and
/// the reader's data lives in one place (the comment), where erasing it
/// erases it. Only a deletion keeps a copy, since its comment is gone.
#[derive(Debug, Clone)]
pub struct NotificationEvent {
    pub id: i64,
    pub kind: WebhookEvent,
    /// True for the event of a new submission (the one moderators are mailed
    /// about), false for a moderator's change.
    pub submitted: bool,
    /// The reader ticked "notify me of follow-up comments" (submissions only).
    pub wants_replies: bool,
    pub comment_id: CommentId,
    /// `comment.deleted` only: the comment as it was.
    pub deleted: Option<Comment>,
    pub created_at: OffsetDateTime,
}

/// What one delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    ModeratorMail,
    Digest,
    Confirmation,
    Reply,
    TestMail,
    Webhook,
    /// Akismet's `submit-ham`: a moderator approved what it called spam.
    AkismetHam,
    /// Akismet's `submit-spam`: a moderator marked as spam what it passed.
    AkismetSpam,
}

impl DeliveryKind {
    pub const ALL: [DeliveryKind; 8] = [
        Self::ModeratorMail,
        Self::Digest,
        Self::Confirmation,
        Self::Reply,
        Self::TestMail,
        Self::Webhook,
        Self::AkismetHam,
        Self::AkismetSpam,
    ];

    /// The spelling in the table and in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModeratorMail => "moderator_mail",
            Self::Digest => "digest",
            Self::Confirmation => "confirmation",
            Self::Reply => "reply",
            Self::TestMail => "test_mail",
            Self::Webhook => "webhook",
            Self::AkismetHam => "akismet_ham",
            Self::AkismetSpam => "akismet_spam",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// True for mail, false for a webhook or Akismet call.
    pub fn is_mail(self) -> bool {
        !matches!(self, Self::Webhook | Self::AkismetHam | Self::AkismetSpam)
    }

    /// True for a call to Akismet (its feedback).
    pub fn is_akismet(self) -> bool {
        matches!(self, Self::AkismetHam | Self::AkismetSpam)
    }
}

/// A delivery to queue: a formatted mail for one address, or a webhook body
/// for one URL.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub kind: DeliveryKind,
    pub recipient: String,
    pub payload: Vec<u8>,
}

/// A queued delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub kind: DeliveryKind,
    pub recipient: String,
    pub payload: Vec<u8>,
    /// Tries so far, this one included.
    pub attempts: u32,
}

/// The comments of one claim held for a moderator's next digest: stored as
/// one row, however many they are.
#[derive(Debug, Clone)]
pub struct HeldComments {
    pub recipient: String,
    pub comment_ids: Vec<CommentId>,
}

/// A stored batch of held comments read back for the digest.
#[derive(Debug, Clone)]
pub struct DigestBatch {
    pub id: i64,
    pub comment_ids: Vec<CommentId>,
}

/// A reader's request for reply mail, created when its submission's event is
/// handled (the subscription is named by the comment's id).
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub comment_id: CommentId,
    pub uri: String,
    pub email: String,
}

/// What handling a claim of events produces, stored in one transaction with
/// the removal of the events.
#[derive(Debug, Clone, Default)]
pub struct EventOutcome {
    pub deliveries: Vec<NewDelivery>,
    pub held: Vec<HeldComments>,
    pub subscriptions: Vec<NewSubscription>,
}

/// Waiting and given-up deliveries per kind (one row per kind and count).
const OUTBOX_FIGURES: &str = "SELECT kind, COUNT(*), 0 FROM outbox \
     WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY kind \
     UNION ALL \
     SELECT kind, 0, COUNT(*) FROM outbox WHERE failed_at IS NOT NULL GROUP BY kind";

/// Queued, sent and failed deliveries of one kind, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxFigures {
    pub queued: i64,
    pub failed: i64,
}

/// A claim statement with the row lock of the backend: `FOR UPDATE SKIP
/// LOCKED` on PostgreSQL (instances claiming together take different rows),
/// nothing on SQLite (one writer at a time claims anyway).
macro_rules! with_row_lock {
    ($store:expr, $statement:ident) => {
        match $store {
            Store::Sqlite(_) => $statement!(""),
            Store::Postgres(_) => $statement!(" FOR UPDATE SKIP LOCKED"),
        }
    };
}

/// True while the Akismet check of the event's comment is still to be made
/// and was queued after `$cutoff` (a parameter): the dispatcher leaves such
/// a submission's event for later, so moderators are not mailed about a
/// comment Akismet is about to call spam, and waits no longer than that.
macro_rules! check_due {
    ($cutoff:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM akismet_checks k \
                     WHERE k.comment_id = notification_events.comment_id \
                       AND k.checked_at IS NULL AND k.created_at > ",
            $cutoff,
            ")"
        )
    };
}

macro_rules! claim_events_statement {
    ($lock:literal) => {
        concat!(
            "UPDATE notification_events SET claim = $1, claimed_until = $2 \
             WHERE id IN (SELECT id FROM notification_events \
                          WHERE (claimed_until IS NULL OR claimed_until <= $3) \
                            AND NOT (submitted AND ",
            check_due!("$5"),
            ") ORDER BY id LIMIT $4",
            $lock,
            ") RETURNING id, event, submitted, wants_replies, comment_id, deleted, created_at"
        )
    };
}

macro_rules! claim_deliveries_statement {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                          WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                          ORDER BY next_attempt_at, id LIMIT $3",
            $lock,
            ") RETURNING id, kind, recipient, payload, attempts"
        )
    };
}

/// Rows per multi-row `INSERT`: well inside SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters (five per row at most).
const ROWS_PER_STATEMENT: usize = 1000;

impl Store {
    /// Claims up to `limit` events nobody is working on, for `lease`; returns
    /// the claim's name (for [`Store::complete_events`]) and the events. On
    /// PostgreSQL an instance that dies holding a claim only delays its
    /// events: once the lease runs out another instance takes them. On
    /// SQLite, which one process owns, the claim is a plain read.
    ///
    /// A submission whose Akismet check is still due is left for a later
    /// claim for up to `wait_for_checks` after it was stored (zero: never).
    pub async fn claim_events(
        &self,
        limit: u32,
        lease: time::Duration,
        wait_for_checks: time::Duration,
    ) -> Result<(String, Vec<NotificationEvent>), StoreError> {
        let now = now();
        let checks_since = now - wait_for_checks;
        type Row = (i64, String, bool, bool, CommentId, Option<String>, OffsetDateTime);
        let (claim, rows): (String, Vec<Row>) = match self {
            // One process per file: nobody else can take the events, so a
            // read is the claim (no write, no commit to wait for), and the
            // completion removes exactly the ids read.
            Store::Sqlite(backend) => {
                let rows = sqlx::query_as(concat!(
                    "SELECT id, event, submitted, wants_replies, comment_id, deleted, created_at \
                     FROM notification_events WHERE NOT (submitted AND ",
                    check_due!("$2"),
                    ") ORDER BY id LIMIT $1"
                ))
                .bind(i64::from(limit))
                .bind(checks_since)
                .fetch_all(&backend.pool)
                .await
                .map_err(super::sqlite::classify)?;
                (String::new(), rows)
            }
            Store::Postgres(_) => {
                // Random, so two instances never share a claim name.
                let claim = crate::notify::links::Nonce::random().to_hex();
                let sql = with_row_lock!(self, claim_events_statement);
                let rows = on_pool!(self, pool => sqlx::query_as(sql)
                    .bind(&claim)
                    .bind(now + lease)
                    .bind(now)
                    .bind(i64::from(limit))
                    .bind(checks_since)
                    .fetch_all(pool)
                    .await)?;
                (claim, rows)
            }
        };
        let mut events: Vec<NotificationEvent> = rows
            .into_iter()
            .filter_map(
                |(id, event, submitted, wants_replies, comment_id, deleted, created_at)| {
                    let kind = WebhookEvent::ALL.into_iter().find(|kind| kind.as_str() == event);
                    let deleted = match deleted.as_deref().map(serde_json::from_str::<Comment>) {
                        None => Ok(None),
                        Some(Ok(comment)) => Ok(Some(comment)),
                        Some(Err(_)) => Err(()),
                    };
                    match (kind, deleted) {
                        (Some(kind), Ok(deleted)) => Some(NotificationEvent {
                            id,
                            kind,
                            submitted,
                            wants_replies,
                            comment_id,
                            deleted,
                            created_at,
                        }),
                        _ => {
                            // Written by a later version, or damaged: handled as
                            // done (complete_events removes it) rather than retried forever.
                            tracing::warn!(id, event, "notification event not understood; dropped");
                            None
                        }
                    }
                },
            )
            .collect();
        events.sort_by_key(|event| event.id);
        Ok((claim, events))
    }

    /// Stores what handling the events of `claim` produced and removes those
    /// events, in one transaction. False (and nothing stored) when the claim
    /// was lost: its lease ran out and another instance took the events.
    pub async fn complete_events(
        &self,
        claim: &str,
        events: &[NotificationEvent],
        outcome: &EventOutcome,
    ) -> Result<bool, StoreError> {
        let now = now();
        let single_process = matches!(self, Store::Sqlite(_));
        in_transaction!(self, |connection| {
            let removed = if single_process {
                let mut removed = 0;
                for chunk in events.chunks(ROWS_PER_STATEMENT) {
                    let mut sql = QueryBuilder::new("DELETE FROM notification_events WHERE id IN (");
                    let mut list = sql.separated(", ");
                    for event in chunk {
                        list.push_bind(event.id);
                    }
                    sql.push(")");
                    removed += sql.build().execute(&mut *connection).await?.rows_affected();
                }
                removed
            } else {
                sqlx::query("DELETE FROM notification_events WHERE claim = $1 AND claimed_until > $2")
                    .bind(claim)
                    .bind(now)
                    .execute(&mut *connection)
                    .await?
                    .rows_affected()
            };
            if removed == 0 {
                return Ok(false);
            }
            for deliveries in outcome.deliveries.chunks(ROWS_PER_STATEMENT) {
                let mut sql = QueryBuilder::new(
                    "INSERT INTO outbox (kind, recipient, payload, created_at, next_attempt_at) ",
                );
                sql.push_values(deliveries, |mut row, delivery| {
                    row.push_bind(delivery.kind.as_str())
                        .push_bind(&delivery.recipient)
                        .push_bind(&delivery.payload)
                        .push_bind(now)
                        .push_bind(now);
                });
                sql.build().execute(&mut *connection).await?;
            }
            for held in &outcome.held {
                sqlx::query(
                    "INSERT INTO digest_batches (recipient, comment_ids, created_at) VALUES ($1, $2, $3)",
                )
                .bind(&held.recipient)
                .bind(encode_ids(&held.comment_ids)?)
                .bind(now)
                .execute(&mut *connection)
                .await?;
            }
            for subscription in &outcome.subscriptions {
                // The comment may be gone already (deleted before its event
                // was handled): then there is nothing to subscribe to.
                sqlx::query(
                    "INSERT INTO subscriptions (comment_id, uri, email, created_at) \
                     SELECT id, $2, $3, $4 FROM comments WHERE id = $1 \
                     ON CONFLICT (comment_id) DO NOTHING",
                )
                .bind(subscription.comment_id)
                .bind(&subscription.uri)
                .bind(&subscription.email)
                .bind(now)
                .execute(&mut *connection)
                .await?;
            }
            Ok(true)
        })
    }

    /// Queues one delivery on its own (the test mail of the moderation page).
    pub async fn enqueue_delivery(&self, delivery: &NewDelivery) -> Result<(), StoreError> {
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO outbox (kind, recipient, payload, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(delivery.kind.as_str())
        .bind(&delivery.recipient)
        .bind(&delivery.payload)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))
    }

    /// Deliveries of `kind` queued for `recipient` since `since`, sent or not:
    /// what the hourly and daily budgets count. Addresses are compared
    /// without regard to case: mailboxes do not tell `Maya@` from `maya@`,
    /// so neither may a budget (the index `outbox_recent` is on `LOWER`).
    pub async fn deliveries_since(
        &self,
        kind: DeliveryKind,
        recipient: &str,
        since: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE LOWER(recipient) = LOWER($1) AND kind = $2 AND created_at > $3",
        )
        .bind(recipient)
        .bind(kind.as_str())
        .bind(since)
        .fetch_one(pool)
        .await)
    }

    /// Claims up to `limit` deliveries that are due, for `lease`: each is
    /// counted as a try now, and is due again when the lease runs out (so an
    /// instance killed mid-send loses nothing; the delivery goes out again).
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        lease: time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = now();
        let sql = with_row_lock!(self, claim_deliveries_statement);
        let rows: Vec<(i64, String, String, Vec<u8>, i32)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(now + lease)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        let mut deliveries: Vec<Delivery> = rows
            .into_iter()
            .filter_map(|(id, kind, recipient, payload, attempts)| {
                Some(Delivery {
                    id,
                    kind: DeliveryKind::parse(&kind)?,
                    recipient,
                    payload,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                })
            })
            .collect();
        deliveries.sort_by_key(|delivery| delivery.id);
        Ok(deliveries)
    }

    /// Hands claimed deliveries back untried: due now, and the try their
    /// claim counted is taken back. Only for deliveries whose claim's lease
    /// has not ended (nobody else can hold them then).
    pub async fn release_deliveries(&self, ids: &[i64]) -> Result<(), StoreError> {
        let now = now();
        in_transaction!(self, |connection| {
            for id in ids {
                sqlx::query(
                    "UPDATE outbox SET next_attempt_at = $2, attempts = attempts - 1 \
                     WHERE id = $1 AND sent_at IS NULL AND failed_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *connection)
                .await?;
            }
            Ok(())
        })
    }

    /// Takes back every claim on events and deliveries, so that all of them
    /// are due now; returns how many rows were held. Only for a store that
    /// one process uses (SQLite) when it starts: whatever is claimed then was
    /// claimed by an earlier run of that process. A delivery waiting for a
    /// retry becomes due too, which an operator's restart may well mean.
    pub async fn release_all_claims(&self) -> Result<u64, StoreError> {
        let now = now();
        in_transaction!(self, |connection| {
            let events = sqlx::query(
                "UPDATE notification_events SET claim = NULL, claimed_until = NULL WHERE claim IS NOT NULL",
            )
            .execute(&mut *connection)
            .await?
            .rows_affected();
            let deliveries = sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1 \
                 WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at > $1",
            )
            .bind(now)
            .execute(&mut *connection)
            .await?
            .rows_affected();
            Ok(events + deliveries)
        })
    }

    /// Records a delivery as done.
    pub async fn delivery_sent(&self, id: i64) -> Result<(), StoreError> {
        let now = now();
        on_pool!(self, pool => sqlx::query("UPDATE outbox SET sent_at = $2, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Records a failed try; the delivery is due again at `retry_at`.
    pub async fn delivery_retry(
        &self,
        id: i64,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("UPDATE outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(retry_at)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Records a delivery as given up after its last try.
    pub async fn delivery_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let now = now();
        on_pool!(self, pool => sqlx::query("UPDATE outbox SET failed_at = $2, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(now)
            .bind(error)
            .execute(pool)
            .await
            .map(|_| ()))
    }

    /// Queued (not yet sent, not given up) and failed deliveries of every
    /// kind, zeros included.
    pub async fn outbox_figures(&self) -> Result<Vec<(DeliveryKind, OutboxFigures)>, StoreError> {
        // Two counts, each from its partial index (`outbox_waiting`,
        // `outbox_failed`): never a row of the table, whose payloads make
        // reading it costly when mail piles up.
        let rows: Vec<(String, i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(OUTBOX_FIGURES).fetch_all(pool).await)?;
        // Every kind, zero where nothing waits or failed: a gauge that went
        // back to zero must say so.
        let mut figures: Vec<(DeliveryKind, OutboxFigures)> = DeliveryKind::ALL
            .into_iter()
            .map(|kind| (kind, OutboxFigures::default()))
            .collect();
        for (kind, queued, failed) in rows {
            let Some(kind) = DeliveryKind::parse(&kind) else {
                continue;
            };
            if let Some((_, figure)) = figures.iter_mut().find(|(known, _)| *known == kind) {
                figure.queued += queued;
                figure.failed += failed;
            }
        }
        Ok(figures)
    }

    /// Removes sent deliveries older than `before` (their bodies hold
    /// readers' data; the budgets only look back a day).
    pub async fn prune_sent_deliveries(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|result| result.rows_affected()))
    }

    /// Since when the oldest comment held for `recipient`'s digest has
    /// waited; `None` when nothing is held. One index probe, however many
    /// are held (it runs every second).
    pub async fn oldest_held_comment(&self, recipient: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT created_at FROM digest_batches WHERE recipient = $1 ORDER BY id LIMIT 1",
        )
        .bind(recipient)
        .fetch_optional(pool)
        .await)
    }

    /// The batches of comments held for `recipient`'s digest, oldest first.
    pub async fn digest_batches(&self, recipient: &str) -> Result<Vec<DigestBatch>, StoreError> {
        let rows: Vec<(i64, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, comment_ids FROM digest_batches WHERE recipient = $1 ORDER BY id",
        )
        .bind(recipient)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(id, comment_ids)| {
                let comment_ids = serde_json::from_str(&comment_ids)
                    .map_err(|error| StoreError::Other(sqlx::Error::Decode(error.into())))?;
                Ok(DigestBatch { id, comment_ids })
            })
            .collect()
    }

    /// Queues `digest` and removes the batches it covers, in one transaction
    /// (`None`: only removes them, when every comment they held is gone).
    /// False (nothing stored) when another instance sent them first.
    pub async fn complete_digest(
        &self,
        batch_ids: &[i64],
        digest: Option<&NewDelivery>,
    ) -> Result<bool, StoreError> {
        let now = now();
        in_transaction!(self, |connection| {
            let mut removed = 0;
            for id in batch_ids {
                removed += sqlx::query("DELETE FROM digest_batches WHERE id = $1")
                    .bind(id)
                    .execute(&mut *connection)
                    .await?
                    .rows_affected();
            }
            if removed != batch_ids.len() as u64 {
                // Rolled back: another instance took some of them.
                return Err(sqlx::Error::RowNotFound);
            }
            if let Some(digest) = digest {
                sqlx::query(
                    "INSERT INTO outbox (kind, recipient, payload, created_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(digest.kind.as_str())
                .bind(&digest.recipient)
                .bind(&digest.payload)
                .bind(now)
                .execute(&mut *connection)
                .await?;
            }
            Ok(true)
        })
        .or_else(|error| match error {
            StoreError::Other(sqlx::Error::RowNotFound) => Ok(false),
            other => Err(other),
        })
    }

    /// The confirmed, still active subscription of the comment `comment_id`:
    /// its subscriber's address.
    pub async fn active_subscriber(&self, comment_id: CommentId) -> Result<Option<String>, StoreError> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT email FROM subscriptions \
             WHERE comment_id = $1 AND confirmed_at IS NOT NULL AND ended_at IS NULL",
        )
        .bind(comment_id)
        .fetch_optional(pool)
        .await)
    }
}

/// Held comment ids as `digest_batches` keeps them: a JSON array.
fn encode_ids(ids: &[CommentId]) -> Result<String, sqlx::Error> {
    serde_json::to_string(ids).map_err(|error| sqlx::Error::Encode(error.into()))
}

/// A deleted comment as its event keeps it.
pub(super) fn encode_deleted(comment: &Comment) -> Result<String, sqlx::Error> {
    serde_json::to_string(comment).map_err(|error| sqlx::Error::Encode(error.into()))
}

#[cfg(test)]
mod tests {
    use super::OUTBOX_FIGURES;
    use crate::store::Store;

    #[tokio::test]
    async fn the_outbox_figures_are_counted_from_the_partial_indexes_alone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("figures.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let Store::Sqlite(backend) = &store else {
            unreachable!("a sqlite:// URL")
        };
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {OUTBOX_FIGURES}"
        )))
        .fetch_all(&backend.pool)
        .await
        .unwrap();
        let steps: Vec<&str> = plan.iter().map(|(_, _, _, step)| step.as_str()).collect();
        // Reading a row of the table would read its payload's pages too.
        for index in ["outbox_waiting", "outbox_failed"] {
            assert!(
                steps
                    .iter()
                    .any(|step| step.contains(&format!("USING COVERING INDEX {index}"))),
                "{steps:?}"
            );
        }
        assert!(
            !steps
                .iter()
                .any(|step| step.contains("outbox") && !step.contains("COVERING INDEX")),
            "{steps:?}"
        );
    }
}
