//! The retention job: what the service stops keeping after a while.
//!
//! - The IP address and user agent of a comment (kept for moderators, to
//!   spot a flood from one client) are cleared once the comment is older than
//!   `MARGINALIA_KEEP_IP_DAYS` (default 30).
//! - Spam and rejected comments are deleted `MARGINALIA_PURGE_DAYS` (default
//!   30, as Isso does) after they were moderated (after they were created when
//!   nothing moderated them, such as spam brought in by an import).
//!
//! `0` turns a rule off. The job runs under the [`Supervisor`] when the
//! service starts and then every hour, in bounded steps (see
//! `Store::retention_step`) so that it never holds SQLite's one writer for
//! long. With several instances on PostgreSQL, a step runs only while its
//! transaction holds an advisory lock: one instance at a time does the work,
//! and the others' attempts that hour simply find nothing left. Each run is
//! logged and counted (`marginalia_retention_rows_total`).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::Config;
use crate::state::AppState;
use crate::store::{RetentionStep, Store, StoreError};
use crate::tasks::Supervisor;

/// How often the job runs after the first run at start-up.
pub const INTERVAL: Duration = Duration::from_secs(60 * 60);
/// Comments changed per step (one short transaction each).
const STEP_ROWS: u32 = 1000;

/// How long what is kept; `None`: that rule is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// How long a comment keeps its IP address and user agent.
    pub keep_ip: Option<time::Duration>,
    /// How long after moderation a spam or rejected comment is kept.
    pub purge_after: Option<time::Duration>,
}

impl RetentionPolicy {
    /// From days, where 0 means "keep": `MARGINALIA_KEEP_IP_DAYS` and
    /// `MARGINALIA_PURGE_DAYS`.
    pub fn from_days(keep_ip_days: u32, purge_days: u32) -> Self {
        let days = |days: u32| (days > 0).then(|| time::Duration::days(i64::from(days)));
        Self {
            keep_ip: days(keep_ip_days),
            purge_after: days(purge_days),
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::from_days(config.keep_ip_days, config.purge_days)
    }

    /// True when both rules are off: the job has nothing to do.
    pub fn is_off(&self) -> bool {
        self.keep_ip.is_none() && self.purge_after.is_none()
    }
}

/// Starts the job under `supervisor`, unless both rules are off. A failing
/// run (the database away) is logged and tried again at the next hour.
pub fn start(state: Arc<AppState>, policy: RetentionPolicy, supervisor: &mut Supervisor) {
    if policy.is_off() {
        tracing::info!("retention is off: IP addresses, spam and rejected comments are kept");
        return;
    }
    // Dropped at its next await at shutdown: every step is one transaction,
    // which rolls back whole if it is cut off.
    supervisor.spawn_until_cancelled("retention", async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The first tick is immediate: a run at start-up.
            ticks.tick().await;
            match run(&state.store, policy, OffsetDateTime::now_utc()).await {
                Ok(Some(done)) => {
                    state.metrics.retention_run(done.ip_cleared, done.purged);
                    tracing::info!(
                        ip_cleared = done.ip_cleared,
                        purged = done.purged,
                        "retention run finished"
                    );
                }
                Ok(None) => tracing::debug!("retention: another instance is running it"),
                Err(error) => tracing::warn!(error = %error, "retention run failed; retrying in an hour"),
            }
        }
    });
}

/// One run of the job as of `now`: steps until the rules find nothing more.
/// `None` when another instance held the job's lock.
pub async fn run(
    store: &Store,
    policy: RetentionPolicy,
    now: OffsetDateTime,
) -> Result<Option<RetentionStep>, StoreError> {
    // Far beyond the calendar's start (a huge setting): nothing is that old.
    let clear_ip_before = policy.keep_ip.and_then(|keep| now.checked_sub(keep));
    let purge_before = policy.purge_after.and_then(|keep| now.checked_sub(keep));
    let mut total = RetentionStep::default();
    loop {
        let Some(step) = store
            .retention_step(clear_ip_before, purge_before, STEP_ROWS)
            .await?
        else {
            // Another instance holds the lock; what this run did stands.
            return Ok((total != RetentionStep::default()).then_some(total));
        };
        total.ip_cleared += step.ip_cleared;
        total.purged += step.purged;
        if step.ip_cleared < u64::from(STEP_ROWS) && step.purged < u64::from(STEP_ROWS) {
            return Ok(Some(total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RetentionPolicy;

    #[test]
    fn zero_days_turns_a_rule_off() {
        let policy = RetentionPolicy::from_days(30, 0);
        assert_eq!(policy.keep_ip, Some(time::Duration::days(30)));
        assert_eq!(policy.purge_after, None);
        assert!(!policy.is_off());
        assert!(RetentionPolicy::from_days(0, 0).is_off());
    }
}
