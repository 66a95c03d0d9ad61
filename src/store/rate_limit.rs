//! The submission limit that every instance on one PostgreSQL database
//! shares (`rate_limit_cells`); PostgreSQL only, since a SQLite file serves
//! one instance and its in-process limiter is the whole limit. The policy
//! around it (checked after the in-process limiter, refused when it cannot be
//! asked) is `rate_limit`'s; this module holds the statements and why they
//! are right.
//!
//! # The algorithm: GCRA in one statement
//!
//! The generic cell rate algorithm keeps one instant per client, its
//! *theoretical arrival time* (TAT): when the client's allowance would be
//! whole again if it stopped now. With `T` the emission interval (a minute
//! divided by the sustained rate) and a burst of `b`, each accepted
//! submission moves the TAT to `max(TAT, now) + T`, and a submission is
//! accepted only if that new TAT is at most `τ = b·T` ahead of now. A client
//! idle for long starts from `now`, so it gets `b` at once (TATs `now + T`
//! … `now + b·T`) and then one per `T`; idling longer earns nothing more.
//! This is exactly `governor`'s quota `per_minute(n).allow_burst(b)`, so the
//! shared and in-process limits agree.
//!
//! The statement is an `INSERT … ON CONFLICT DO UPDATE … WHERE`:
//!
//! - **atomic across instances**: `ON CONFLICT DO UPDATE` locks the client's
//!   row and evaluates the update on its latest committed version (in READ
//!   COMMITTED, even one newer than the statement's snapshot), so two
//!   instances taking a cell at once are serialized and both see the other's
//!   TAT; a first submission inserts, and a concurrent insert of the same key
//!   turns into the update. No read-then-write gap, no explicit transaction.
//! - **a refusal changes nothing**: the allowance test is the update's
//!   `WHERE`, so a refused submission writes no row version and never moves
//!   the TAT (otherwise a client retrying in a loop would push its own
//!   allowance further away forever, and every refusal would cost a write).
//! - **one clock**: `now` is PostgreSQL's `clock_timestamp()`, read once in a
//!   materialized CTE and carried into the update as the proposed row's TAT
//!   (`excluded.tat = now + T`, so `max(TAT, now) + T` is
//!   `GREATEST(cell.tat + T, excluded.tat)`). The instances' own clocks never
//!   enter it, so their skew does not matter. `clock_timestamp()` rather than
//!   `now()`: the instant of the check, not of a transaction start.
//! - **the wait on refusal** comes from the same statement: when the upsert
//!   returns no row, a second branch reads the client's TAT and answers
//!   `TAT + T − τ − now`. That read sees the statement's snapshot, which may
//!   predate a concurrent update (then the hint is a little short and the
//!   early retry is refused again) or, for a row inserted concurrently,
//!   miss it (then no row comes back at all, and the caller falls back to
//!   `T`). The decision itself never depends on that read.
//!
//! # Bounded size
//!
//! A row whose TAT has passed means the same as no row (both give a full
//! burst), so [`PostgresStore::prune_rate_limit_cells`] deletes them; every
//! instance runs it periodically. A row lives at most `τ` after its client's
//! last accepted submission. There is no index on `tat`: it would turn every
//! accepted submission's HOT update into an index write, while the periodic
//! delete scans a table that only holds the clients of the last `τ`. A
//! delete racing an update is safe: the delete re-checks `tat` on the row's
//! latest version and skips it if the update advanced it, and an upsert that
//! finds its row deleted inserts a fresh one.

use std::time::Duration;

use super::postgres::classify;
use super::{PostgresStore, StoreError};

/// What the shared limit decided about one submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedVerdict {
    /// A cell was taken; the submission may go ahead.
    Allowed,
    /// Over the limit: nothing was changed, and the next submission may be
    /// accepted after about `retry_after`.
    Refused { retry_after: Duration },
}

/// The GCRA step, described in the module header. `$1` the client key,
/// `$2` the emission interval `T` and `$3` the tolerance `τ = b·T`, both in
/// microseconds (PostgreSQL's precision).
const TAKE_CELL: &str = "\
WITH clock AS MATERIALIZED (SELECT clock_timestamp() AS now),
taken AS (
    INSERT INTO rate_limit_cells AS cell (key, tat)
    SELECT $1, clock.now + $2 * INTERVAL '1 microsecond' FROM clock
    ON CONFLICT (key) DO UPDATE
        SET tat = GREATEST(cell.tat + $2 * INTERVAL '1 microsecond', excluded.tat)
        WHERE GREATEST(cell.tat + $2 * INTERVAL '1 microsecond', excluded.tat)
              <= excluded.tat + ($3 - $2) * INTERVAL '1 microsecond'
    RETURNING tat
)
SELECT TRUE, 0::BIGINT FROM taken
UNION ALL
SELECT FALSE, (EXTRACT(EPOCH FROM cell.tat - clock.now) * 1000000)::BIGINT + $2 - $3
FROM rate_limit_cells AS cell, clock
WHERE cell.key = $1 AND NOT EXISTS (SELECT FROM taken)";

impl PostgresStore {
    /// Takes one cell of `key`'s shared allowance (one per `interval`, up to
    /// `burst` at once), or says how long until one is free. Gives up after
    /// `within` (waiting for a connection included) with
    /// [`StoreError::Unavailable`]: a limit that cannot be asked in time is
    /// reported, never passed as allowed.
    pub async fn take_rate_limit_cell(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        within: Duration,
    ) -> Result<SharedVerdict, StoreError> {
        let interval_us = micros(interval).max(1);
        let tolerance_us = interval_us.saturating_mul(i64::from(burst));
        let row: Option<(bool, i64)> = tokio::time::timeout(
            within,
            sqlx::query_as(TAKE_CELL)
                .bind(key)
                .bind(interval_us)
                .bind(tolerance_us)
                .fetch_optional(&self.pool),
        )
        .await
        .map_err(|_| too_slow(within))?
        .map_err(classify)?;
        Ok(match row {
            Some((true, _)) => SharedVerdict::Allowed,
            Some((false, wait_us)) => SharedVerdict::Refused {
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
            },
            // Refused, and the row was inserted after this statement's
            // snapshot (see the module header): the wait is about one interval.
            None => SharedVerdict::Refused {
                retry_after: interval,
            },
        })
    }

    /// Deletes the cells whose TAT has passed (they mean the same as no row);
    /// returns how many.
    pub async fn prune_rate_limit_cells(&self) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM rate_limit_cells WHERE tat < clock_timestamp()")
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(classify)
    }
}

/// A duration in whole microseconds, saturating (durations here are minutes).
fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The error of a limiter statement that did not answer in time: the
/// database is as good as unavailable for this request.
fn too_slow(within: Duration) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the shared rate limit did not answer within {within:?}"),
    )))
}
