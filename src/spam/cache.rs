//! The in-process copy of the moderation rules, so a submission checks them
//! without a query. The same correctness rules as the thread cache:
//! - a change through this instance replaces the copy before it answers;
//! - on PostgreSQL a change through another instance arrives by
//!   `LISTEN/NOTIFY` (channel `marginalia_rules`) and drops the copy; while
//!   the listener is down the copy is not used (every submission reads the
//!   rules), and it is dropped whenever the listener (re)connects;
//! - a copy read before a change is never kept after it: every change bumps
//!   an epoch, and a fill whose read began in an older epoch is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{ModerationMode, ModerationRules};

pub struct RulesCache {
    /// `MARGINALIA_MODERATION`: the mode until a moderator stores rules.
    default_mode: ModerationMode,
    enabled: AtomicBool,
    epoch: AtomicU64,
    current: Mutex<Option<Arc<ModerationRules>>>,
}

impl RulesCache {
    /// An empty cache; `enabled` says whether it may serve at once
    /// (PostgreSQL waits for its listener).
    pub fn new(default_mode: ModerationMode, enabled: bool) -> Self {
        Self {
            default_mode,
            enabled: AtomicBool::new(enabled),
            epoch: AtomicU64::new(0),
            current: Mutex::new(None),
        }
    }

    /// The rules in force before any are stored.
    pub fn defaults(&self) -> ModerationRules {
        ModerationRules::defaults(self.default_mode)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<ModerationRules>>> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached rules, if any and if the cache may serve.
    pub fn get(&self) -> Option<Arc<ModerationRules>> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        self.lock().clone()
    }

    /// Read this before reading the rules from the store; hand it to [`RulesCache::fill`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps rules read from the store, unless they changed since the read
    /// began (`epoch` is stale) or the cache is off.
    pub fn fill(&self, rules: Arc<ModerationRules>, epoch: u64) {
        let mut current = self.lock();
        if self.enabled.load(Ordering::Acquire) && self.epoch.load(Ordering::Acquire) == epoch {
            *current = Some(rules);
        }
    }

    /// The rules changed (here or on another instance): forget the copy.
    pub fn invalidate(&self) {
        let mut current = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        *current = None;
    }

    /// Switches serving on (listener up) or off (listener lost); either way
    /// what was cached may be stale.
    pub fn set_enabled(&self, enabled: bool) {
        self.invalidate();
        self.enabled.store(enabled, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_began_before_a_change_is_dropped() {
        let cache = RulesCache::new(ModerationMode::All, true);
        let rules = Arc::new(cache.defaults());
        let epoch = cache.epoch();
        cache.invalidate();
        cache.fill(rules.clone(), epoch);
        assert!(cache.get().is_none());
        cache.fill(rules.clone(), cache.epoch());
        assert_eq!(cache.get().as_deref(), Some(&*rules));
        cache.set_enabled(false);
        cache.fill(rules, cache.epoch());
        assert!(cache.get().is_none());
    }
}
