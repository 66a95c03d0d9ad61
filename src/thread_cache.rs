//! The cache of public thread pages, serialized and with their ETag, so that
//! the widget's read — tens of thousands for every comment written — costs a
//! hash lookup instead of two queries and a JSON encoding.
//!
//! Correctness rules:
//! - every moderation action invalidates its thread *before* it answers, so on
//!   one instance the very next read shows it;
//! - on PostgreSQL other instances learn of changes through `LISTEN/NOTIFY`
//!   (see `store::PostgresStore::listen_for_changes`); while that listener is
//!   down the cache is switched off, and it is emptied whenever the listener
//!   (re)connects, since notifications sent meanwhile are lost;
//! - a page read from the database before an invalidation is never stored
//!   after it: every invalidation bumps an epoch, and a fill whose read began
//!   in an older epoch is dropped.
//!
//! Beside its pages, a thread's entry keeps its [`ThreadState`] (closed or
//! not, see `threads`), so a submission checks it without a query; it goes
//! with the pages whenever the thread is invalidated. A page that says
//! `"closed": false` only because the age rule has not yet closed the
//! thread is served until that moment ([`CachedPage::fresh_until`]).
//!
//! The cache is bounded in bytes; whole threads are evicted least recently used first.
//!
//! The Atom feeds (`crate::feeds`) are kept here too, so that they follow the
//! very same invalidations: a thread's feed is one more page of its thread
//! ([`FEED_PAGE`]), and the site's recent-comments feed, which any thread's
//! change may alter, lives under [`SITE_WIDE`], which every invalidation drops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use hashlink::LruCache;
use time::OffsetDateTime;
use warp::http::HeaderValue;

use crate::domain::{CommentId, ThreadState};

/// Which page of a thread: the cursor it starts after and its size.
pub type PageKey = (Option<CommentId>, u32);

/// The page key of a thread's Atom feed: no page of the JSON read has it,
/// since that read's `limit` is at least 1.
pub const FEED_PAGE: PageKey = (None, 0);

/// The "thread" of pages built from every thread (the recent-comments feed):
/// no thread's uri is empty, and invalidating any thread drops it too.
pub const SITE_WIDE: &str = "";

/// Rough bookkeeping cost of an entry beyond its bytes (maps, Arcs, header).
const ENTRY_OVERHEAD: usize = 160;

/// One serialized page of a public thread.
#[derive(Debug)]
pub struct CachedPage {
    pub body: Bytes,
    pub etag: HeaderValue,
    /// When what the page says stops being true by itself (the age rule
    /// closes its thread); `None`: only a change to the thread ends it.
    pub fresh_until: Option<OffsetDateTime>,
}

impl CachedPage {
    fn cost(&self) -> usize {
        self.body.len() + self.etag.len() + ENTRY_OVERHEAD
    }
}

#[derive(Default)]
struct ThreadPages {
    pages: HashMap<PageKey, Arc<CachedPage>>,
    /// Whether the thread takes comments, as last read.
    state: Option<ThreadState>,
    bytes: usize,
}

/// Bookkeeping cost of a cached [`ThreadState`].
const STATE_COST: usize = 64;

struct Inner {
    threads: LruCache<String, ThreadPages>,
    bytes: usize,
}

pub struct ThreadCache {
    max_bytes: usize,
    enabled: AtomicBool,
    epoch: AtomicU64,
    inner: Mutex<Inner>,
}

impl ThreadCache {
    /// A cache of at most `max_bytes`; 0 turns caching off. `enabled` says
    /// whether it may serve at once (PostgreSQL waits for its listener).
    pub fn new(max_bytes: usize, enabled: bool) -> Self {
        Self {
            max_bytes,
            enabled: AtomicBool::new(enabled && max_bytes > 0),
            epoch: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                threads: LruCache::new_unbounded(),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The cached page, if any.
    pub fn get(&self, uri: &str, key: PageKey) -> Option<Arc<CachedPage>> {
        if !self.is_enabled() {
            return None;
        }
        let page = self.lock().threads.get(uri)?.pages.get(&key).cloned()?;
        match page.fresh_until {
            Some(until) if until <= OffsetDateTime::now_utc() => None,
            _ => Some(page),
        }
    }

    /// The cached state of a thread (closed or not), if any.
    pub fn state(&self, uri: &str) -> Option<ThreadState> {
        if !self.is_enabled() {
            return None;
        }
        self.lock().threads.get(uri)?.state
    }

    /// Stores a thread's state read from the database, on the same terms as
    /// [`ThreadCache::insert`] (`epoch` read before the query).
    pub fn insert_state(&self, uri: &str, state: ThreadState, epoch: u64) {
        let cost = STATE_COST + uri.len();
        if !self.is_enabled() || cost > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let thread = match inner.threads.get_mut(uri) {
            Some(thread) => thread,
            None => {
                inner.threads.insert(uri.to_owned(), ThreadPages::default());
                inner.threads.get_mut(uri).expect("just inserted")
            }
        };
        let added = if thread.state.replace(state).is_some() {
            0
        } else {
            cost
        };
        thread.bytes += added;
        inner.bytes += added;
        self.evict(&mut inner);
    }

    /// Drops least recently used threads until the bound holds.
    fn evict(&self, inner: &mut Inner) {
        while inner.bytes > self.max_bytes {
            let Some((_, evicted)) = inner.threads.remove_lru() else {
                break;
            };
            inner.bytes -= evicted.bytes;
        }
    }

    /// The cached page even while the cache is not serving: for when the
    /// database cannot be reached at all. Nobody can moderate then, so the
    /// page is at most as stale as the outage is long, and a reader still
    /// sees the comments instead of an error.
    pub fn last_known(&self, uri: &str, key: PageKey) -> Option<Arc<CachedPage>> {
        self.lock().threads.get(uri)?.pages.get(&key).cloned()
    }

    /// Read this before querying the database; hand it to [`ThreadCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a page read from the database, unless the thread may have
    /// changed since the read began (`epoch` is stale) or the cache is off.
    pub fn insert(&self, uri: &str, key: PageKey, page: Arc<CachedPage>, epoch: u64) {
        let cost = page.cost() + uri.len();
        // A page that would crowd out most of the cache is not worth keeping.
        if !self.is_enabled() || cost > self.max_bytes / 4 {
            return;
        }
        let mut inner = self.lock();
        // Checked under the lock that invalidations also take.
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let thread = match inner.threads.get_mut(uri) {
            Some(thread) => thread,
            None => {
                inner.threads.insert(uri.to_owned(), ThreadPages::default());
                inner.threads.get_mut(uri).expect("just inserted")
            }
        };
        let replaced = thread
            .pages
            .insert(key, page)
            .map_or(0, |old| old.cost() + uri.len());
        thread.bytes = thread.bytes + cost - replaced;
        inner.bytes = inner.bytes + cost - replaced;
        self.evict(&mut inner);
    }

    /// Forgets every page of one thread (after a moderation action on it),
    /// and the site-wide pages, which show every thread.
    pub fn invalidate(&self, uri: &str) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for key in [uri, SITE_WIDE] {
            if let Some(thread) = inner.threads.remove(key) {
                inner.bytes -= thread.bytes;
            }
        }
    }

    /// Forgets everything (when notifications may have been missed).
    pub fn clear(&self) {
        let mut inner = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        inner.threads.clear();
        inner.bytes = 0;
    }

    /// Turns serving from the cache on or off. Turning it on empties it (what
    /// it holds may have missed changes); turning it off keeps the pages, but
    /// only [`ThreadCache::last_known`] hands them out.
    pub fn set_enabled(&self, enabled: bool) {
        if !enabled {
            self.enabled.store(false, Ordering::Release);
            return;
        }
        self.clear();
        if self.max_bytes > 0 {
            self.enabled.store(true, Ordering::Release);
        }
    }

    /// Bytes currently accounted for.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(size: usize) -> Arc<CachedPage> {
        Arc::new(CachedPage {
            body: Bytes::from(vec![b'x'; size]),
            etag: HeaderValue::from_static("\"e\""),
            fresh_until: None,
        })
    }

    #[test]
    fn a_stored_page_is_served_until_its_thread_is_invalidated() {
        let cache = ThreadCache::new(1 << 20, true);
        cache.insert("/a/", (None, 200), page(100), cache.epoch());
        cache.insert("/b/", (None, 200), page(100), cache.epoch());
        assert!(cache.get("/a/", (None, 200)).is_some());
        assert!(
            cache.get("/a/", (Some(3), 200)).is_none(),
            "pages are keyed by cursor and size"
        );
        cache.invalidate("/a/");
        assert!(cache.get("/a/", (None, 200)).is_none());
        assert!(cache.get("/b/", (None, 200)).is_some(), "other threads stay");
    }

    #[test]
    fn a_threads_state_is_kept_with_its_pages_and_goes_with_them() {
        let cache = ThreadCache::new(1 << 20, true);
        let closed = ThreadState {
            decided: Some(true),
            first_comment_at: None,
        };
        cache.insert_state("/a/", closed, cache.epoch());
        cache.insert("/a/", (None, 200), page(100), cache.epoch());
        assert_eq!(cache.state("/a/"), Some(closed));
        let stale = cache.epoch();
        cache.invalidate("/a/");
        assert_eq!(cache.state("/a/"), None);
        assert!(cache.get("/a/", (None, 200)).is_none());
        cache.insert_state("/a/", closed, stale);
        assert_eq!(
            cache.state("/a/"),
            None,
            "a read older than the change is dropped"
        );
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_page_is_not_served_past_its_freshness() {
        let cache = ThreadCache::new(1 << 20, true);
        let expiring = |at| {
            Arc::new(CachedPage {
                body: Bytes::from_static(b"{}"),
                etag: HeaderValue::from_static("\"e\""),
                fresh_until: Some(at),
            })
        };
        let now = OffsetDateTime::now_utc();
        cache.insert("/old/", (None, 200), expiring(now), cache.epoch());
        cache.insert(
            "/new/",
            (None, 200),
            expiring(now + time::Duration::hours(1)),
            cache.epoch(),
        );
        assert!(cache.get("/old/", (None, 200)).is_none());
        assert!(cache.get("/new/", (None, 200)).is_some());
    }

    #[test]
    fn a_read_that_began_before_an_invalidation_is_not_stored() {
        let cache = ThreadCache::new(1 << 20, true);
        let epoch = cache.epoch();
        cache.invalidate("/other/");
        cache.insert("/a/", (None, 200), page(100), epoch);
        assert!(cache.get("/a/", (None, 200)).is_none());
    }

    #[test]
    fn site_wide_pages_are_dropped_by_the_invalidation_of_any_thread() {
        let cache = ThreadCache::new(1 << 20, true);
        cache.insert(SITE_WIDE, FEED_PAGE, page(100), cache.epoch());
        cache.insert("/a/", FEED_PAGE, page(100), cache.epoch());
        cache.insert("/b/", FEED_PAGE, page(100), cache.epoch());
        assert!(cache.get(SITE_WIDE, FEED_PAGE).is_some());
        cache.invalidate("/a/");
        assert!(cache.get(SITE_WIDE, FEED_PAGE).is_none());
        assert!(cache.get("/a/", FEED_PAGE).is_none());
        assert!(cache.get("/b/", FEED_PAGE).is_some(), "other threads' feeds stay");
        assert_eq!(cache.bytes(), page(100).cost() + "/b/".len());
    }

    #[test]
    fn the_byte_bound_evicts_least_recently_used_threads() {
        let cache = ThreadCache::new(4_000, true);
        for n in 0..10 {
            let uri = format!("/t{n}/");
            cache.insert(&uri, (None, 200), page(700), cache.epoch());
            // Keep /t0/ recently used.
            assert!(cache.get("/t0/", (None, 200)).is_some());
        }
        assert!(cache.bytes() <= 4_000, "{}", cache.bytes());
        assert!(cache.get("/t0/", (None, 200)).is_some());
        assert!(cache.get("/t9/", (None, 200)).is_some());
        assert!(cache.get("/t1/", (None, 200)).is_none());
    }

    #[test]
    fn a_disabled_or_zero_sized_cache_serves_nothing() {
        let off = ThreadCache::new(0, true);
        off.insert("/a/", (None, 200), page(10), off.epoch());
        assert!(off.get("/a/", (None, 200)).is_none());

        let waiting = ThreadCache::new(1 << 20, false);
        waiting.insert("/a/", (None, 200), page(10), waiting.epoch());
        assert!(waiting.get("/a/", (None, 200)).is_none());
        waiting.set_enabled(true);
        waiting.insert("/a/", (None, 200), page(10), waiting.epoch());
        assert!(waiting.get("/a/", (None, 200)).is_some());
        waiting.set_enabled(false);
        assert!(waiting.get("/a/", (None, 200)).is_none());
    }

    #[test]
    fn while_off_the_pages_are_kept_for_outages_and_dropped_when_it_turns_on() {
        let cache = ThreadCache::new(1 << 20, true);
        cache.insert("/a/", (None, 200), page(10), cache.epoch());
        cache.set_enabled(false);
        assert!(cache.get("/a/", (None, 200)).is_none(), "not served as fresh");
        assert!(cache.last_known("/a/", (None, 200)).is_some());
        // Local moderation still invalidates what is kept.
        cache.invalidate("/a/");
        assert!(cache.last_known("/a/", (None, 200)).is_none());
        cache.insert("/b/", (None, 200), page(10), cache.epoch());
        assert!(
            cache.last_known("/b/", (None, 200)).is_none(),
            "nothing new while off"
        );
        cache.set_enabled(true);
        assert_eq!(cache.bytes(), 0);
    }
}
