//! Whether a thread takes new comments: what a moderator (or an import)
//! decided, and, when nobody did, how old the thread is.

use time::{Duration, OffsetDateTime};

/// What the store knows about a thread's openness. Pure data: the decision
/// itself ([`ThreadState::is_closed`]) takes the current time and the
/// `MARGINALIA_CLOSE_AFTER_DAYS` rule, so a cached state stays right as time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadState {
    /// A moderator's (or an import's) explicit decision: `Some(true)` closed,
    /// `Some(false)` opened. It wins over the age rule both ways, so a
    /// moderator can reopen an old thread.
    pub decided: Option<bool>,
    /// When its first comment (of any status) was written; `None` without comments.
    pub first_comment_at: Option<OffsetDateTime>,
}

impl ThreadState {
    /// When the age rule closes this thread (`close_after` past its first
    /// comment); `None` when a decision stands, there is no rule, or no comment.
    pub fn closes_at(&self, close_after: Option<Duration>) -> Option<OffsetDateTime> {
        if self.decided.is_some() {
            return None;
        }
        Some(self.first_comment_at? + close_after?)
    }

    /// Until when "open" stays true by itself (for a cached page saying
    /// so): the age rule's moment, or, for a thread without comments yet,
    /// `close_after` from `now` (a first comment written now or later closes
    /// it no sooner). `None`: only a change to the thread ends it.
    pub fn open_until(&self, close_after: Option<Duration>, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.decided.is_some() {
            return None;
        }
        let close_after = close_after?;
        Some(self.first_comment_at.unwrap_or(now) + close_after)
    }

    /// True when the thread takes no new comments at `now`.
    pub fn is_closed(&self, close_after: Option<Duration>, now: OffsetDateTime) -> bool {
        match self.decided {
            Some(closed) => closed,
            None => self.closes_at(close_after).is_some_and(|at| at <= now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_wins_over_the_age_rule_both_ways() {
        let now = OffsetDateTime::now_utc();
        let old = Some(now - Duration::days(40));
        let rule = Some(Duration::days(30));
        let undecided = ThreadState {
            decided: None,
            first_comment_at: old,
        };
        assert!(undecided.is_closed(rule, now));
        assert!(!undecided.is_closed(None, now), "no rule, never closed by age");
        let reopened = ThreadState {
            decided: Some(false),
            ..undecided
        };
        assert!(!reopened.is_closed(rule, now));
        let closed = ThreadState {
            decided: Some(true),
            first_comment_at: None,
        };
        assert!(closed.is_closed(None, now), "closed before any comment");
    }

    #[test]
    fn the_age_rule_closes_exactly_when_the_days_have_passed() {
        let first = OffsetDateTime::now_utc() - Duration::days(10);
        let state = ThreadState {
            decided: None,
            first_comment_at: Some(first),
        };
        let rule = Some(Duration::days(10));
        assert_eq!(state.closes_at(rule), Some(first + Duration::days(10)));
        assert!(!state.is_closed(rule, first + Duration::days(10) - Duration::seconds(1)));
        assert!(state.is_closed(rule, first + Duration::days(10)));
        assert_eq!(ThreadState::default().closes_at(rule), None, "no comment yet");
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            ThreadState::default().open_until(rule, now),
            Some(now + Duration::days(10))
        );
        assert_eq!(state.open_until(rule, now), Some(first + Duration::days(10)));
        assert_eq!(state.open_until(None, now), None);
    }
}
