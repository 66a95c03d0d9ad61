//! The in-process negative filter of `MARGINALIA_MODERATION=known`: a set of
//! 64-bit keys of the authors (name, email) of approved comments, which
//! answers "certainly not known" without asking the database. Only a
//! "maybe" is checked by the exact query (`Store::is_known_author`), so an
//! unknown author, the common case on the submission path, costs a hash and
//! a set probe instead of a query through the pool (issues #11 and #14).
//!
//! What it owns: the key of an author ([`submitted_key`], [`stored_keys`]),
//! the set and whether it is complete ([`KnownAuthors`]). Who fills it:
//!
//! - the background refresher (`startup`) loads every approved comment's
//!   distinct name and email from the store, at start-up and then every
//!   [`REFRESH`], while the mode is `known` (an instance in another mode
//!   reads nothing; the set is loaded once the mode turns `known`, and until
//!   then, as before the first load, every submission asks the database:
//!   start-up never waits for the load);
//! - every approval made on this instance adds its author at once
//!   (`comments::after_moderation`), so an author approved here is known to
//!   their very next comment.
//!
//! Keys are never removed: a comment deleted or marked spam after approval
//! leaves a stale key, which only makes the exact query run. The one
//! direction that is not exact: an author approved a moment ago by another
//! instance (or imported by the CLI) is missing here until the next load, so
//! their comment is held for moderation meanwhile, the safe way to be wrong.
//!
//! Normalisation follows the query: the name compared exactly, the email
//! with `lower()` on both sides. `lower()` is ASCII-only in SQLite and
//! locale-dependent in PostgreSQL, so a submitted email with any non-ASCII
//! character is never answered from the set (always a "maybe"), and a
//! stored email is keyed under every lowercase form a backend could give it
//! (ASCII, Unicode full and simple mappings): all that matters is that what
//! the database would call equal gets the same key; extra keys only cost a
//! query. The hash is SipHash with a per-process random key, so nobody can
//! aim collisions at it (which would, again, only cost queries).
//!
//! Memory: a `HashSet<u64>` with a pass-through hasher (the keys are hashes
//! already): 9 bytes a bucket (the key and a control byte), 7/8 of the
//! buckets used at most, so 100k authors take 131,072 buckets, about 1.2 MB.
//! Kept only while the mode is `known` is worth so little that approvals add
//! to it in any mode; what is skipped outside `known` mode is the loading
//! query, which reads every approved comment.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the set is reloaded from the store while the mode is `known`:
/// what other instances approve (and CLI imports) reaches this instance's
/// submissions within that delay.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);

/// What the set says about an author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// No approved comment has this name and email (as of the last load and
    /// this instance's approvals since).
    NotKnown,
    /// Ask the database: the author may be known, the set is not loaded yet,
    /// or the email cannot be keyed exactly.
    Maybe,
}

/// The keys of approved authors, shared by the request path and the
/// refresher.
pub struct KnownAuthors {
    keys: RwLock<HashSet<u64, BuildHasherDefault<PassThrough>>>,
    /// True once a complete load finished: before, the set says nothing.
    loaded: AtomicBool,
    hasher: RandomState,
}

impl Default for KnownAuthors {
    fn default() -> Self {
        Self::new()
    }
}

impl KnownAuthors {
    /// An empty set that answers [`Answer::Maybe`] until its first load.
    pub fn new() -> Self {
        Self {
            keys: RwLock::new(HashSet::default()),
            loaded: AtomicBool::new(false),
            hasher: RandomState::new(),
        }
    }

    /// Whether the author of a new comment (name and email as submitted)
    /// may be known.
    pub fn check(&self, name: &str, email: &str) -> Answer {
        if !self.loaded.load(Ordering::Acquire) {
            return Answer::Maybe;
        }
        let Some(key) = submitted_key(&self.hasher, name, email) else {
            return Answer::Maybe;
        };
        if self.read().contains(&key) {
            Answer::Maybe
        } else {
            Answer::NotKnown
        }
    }

    /// Adds the author of an approved comment (as stored).
    pub fn add(&self, name: &str, email: &str) {
        let keys = stored_keys(&self.hasher, name, email);
        let mut set = self.write();
        set.extend(keys);
    }

    /// Adds every author of a complete load (distinct name and email of the
    /// approved comments) and marks the set complete. Nothing is removed:
    /// keys added meanwhile by approvals stay. The new keys are found under
    /// the read lock, so submissions wait only for the few inserts.
    pub fn load<'a>(&self, authors: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let missing: Vec<u64> = {
            let set = self.read();
            authors
                .into_iter()
                .flat_map(|(name, email)| stored_keys(&self.hasher, name, email))
                .filter(|key| !set.contains(key))
                .collect()
        };
        if !missing.is_empty() {
            self.write().extend(missing);
        }
        self.loaded.store(true, Ordering::Release);
    }

    /// Whether a complete load has finished.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashSet<u64, BuildHasherDefault<PassThrough>>> {
        // A panic while holding the lock cannot leave the set half-changed
        // in a harmful way (keys are only added), so poisoning is ignored.
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<u64, BuildHasherDefault<PassThrough>>> {
        self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The key a submission is looked up under: the name as is, the email
/// ASCII-lowercased; `None` when the email has a non-ASCII character (the
/// backends' `lower()` differ there, so the database decides).
pub fn submitted_key(hasher: &impl BuildHasher, name: &str, email: &str) -> Option<u64> {
    email
        .is_ascii()
        .then(|| key(hasher, name, &email.to_ascii_lowercase()))
}

/// The keys a stored author is filed under: one for each lowercase form of
/// the email a backend's `lower()` could produce (ASCII-only as SQLite's,
/// Unicode full and simple mappings as PostgreSQL's locales), usually all
/// the same key.
pub fn stored_keys(hasher: &impl BuildHasher, name: &str, email: &str) -> Vec<u64> {
    let ascii = email.to_ascii_lowercase();
    if email.is_ascii() {
        return vec![key(hasher, name, &ascii)];
    }
    let full = email.to_lowercase();
    let simple: String = email
        .chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect();
    let mut keys = vec![
        key(hasher, name, &ascii),
        key(hasher, name, &full),
        key(hasher, name, &simple),
    ];
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn key(hasher: &impl BuildHasher, name: &str, lowered_email: &str) -> u64 {
    // `str`'s Hash ends each string with a marker byte, so ("ab", "c") and
    // ("a", "bc") differ.
    hasher.hash_one((name, lowered_email))
}

/// The hasher of the set: the keys are SipHash outputs already, so they
/// are used as they are.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; this is for completeness.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_is_compared_ignoring_ascii_case_and_the_name_exactly() {
        let hasher = RandomState::new();
        let stored = stored_keys(&hasher, "Ada", "Ada@Example.COM");
        assert_eq!(stored.len(), 1);
        assert_eq!(submitted_key(&hasher, "Ada", "ada@example.com"), Some(stored[0]));
        assert_eq!(submitted_key(&hasher, "Ada", "ADA@EXAMPLE.COM"), Some(stored[0]));
        assert_ne!(submitted_key(&hasher, "ada", "ada@example.com"), Some(stored[0]));
        assert_ne!(submitted_key(&hasher, "Ada", "ada@example.org"), Some(stored[0]));
        // No trimming: the query compares the stored strings exactly.
        assert_ne!(submitted_key(&hasher, "Ada ", "ada@example.com"), Some(stored[0]));
        // The boundary between name and email is part of the key.
        assert_ne!(key(&hasher, "ab", "c@x"), key(&hasher, "a", "bc@x"));
    }

    #[test]
    fn a_non_ascii_email_is_left_to_the_database() {
        let hasher = RandomState::new();
        assert_eq!(submitted_key(&hasher, "Zoë", "zoë@example.com"), None);
        assert!(submitted_key(&hasher, "Zoë", "zoe@example.com").is_some());
    }

    #[test]
    fn a_stored_email_is_keyed_under_every_lowercase_a_backend_could_make() {
        let hasher = RandomState::new();
        // U+212A KELVIN SIGN lowercases to an ASCII `k` in Unicode (as in
        // PostgreSQL with a UTF-8 locale), so `k@x` would match it there.
        let stored = stored_keys(&hasher, "K", "\u{212A}@x.example");
        assert!(stored.contains(&submitted_key(&hasher, "K", "k@x.example").unwrap()));
        // U+0130: `i` by the simple mapping, `i̇` by the full one.
        let stored = stored_keys(&hasher, "I", "\u{130}@x.example");
        assert!(stored.contains(&submitted_key(&hasher, "I", "i@x.example").unwrap()));
    }

    #[test]
    fn nothing_is_certain_before_the_first_load() {
        let known = KnownAuthors::new();
        known.add("Ada", "ada@example.com");
        assert_eq!(known.check("Bob", "bob@example.com"), Answer::Maybe);
        known.load([("Cy", "cy@example.com")]);
        assert_eq!(known.check("Bob", "bob@example.com"), Answer::NotKnown);
        assert_eq!(known.check("Ada", "ADA@example.com"), Answer::Maybe);
        assert_eq!(known.check("Cy", "cy@example.com"), Answer::Maybe);
        assert_eq!(known.check("Cy", "cy@example.org"), Answer::NotKnown);
        assert_eq!(known.len(), 2);
        // A reload keeps what approvals added.
        known.load([]);
        assert_eq!(known.check("Ada", "ada@example.com"), Answer::Maybe);
    }
}
