//! Moderator authentication: bearer tokens, the browser sessions of the
//! moderation page, and the lock-out of IPs that keep presenting wrong ones.
//!
//! The /admin page trades a token for a session: an HttpOnly, SameSite=Strict
//! cookie (no script can read it) plus a CSRF token the page must send back in
//! a header on every call. Sessions live in the database, so they work across
//! several instances. Each is bound to the hash of the exact token that
//! started it, not to a name: it ends when that token is revoked, or, for
//! `MARGINALIA_ADMIN_TOKEN`, when the variable is changed or unset.
//!
//! Tokens are 256 random bits. Only a SHA-256 of each is stored: a slow
//! password hash buys nothing for secrets this long, and a fast hash keeps
//! every admin call cheap. Presented tokens are hashed and compared against
//! every known hash in constant time, without stopping at the first match.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::rate_limit::client_key;
use crate::store::{Store, TokenInsertError};

/// The name the `MARGINALIA_ADMIN_TOKEN` token moderates under; no stored
/// token may take it (see [`is_reserved_token_name`]).
pub const ENV_TOKEN_NAME: &str = "admin";
/// The name of the token created on first start when none exists.
pub const FIRST_TOKEN_NAME: &str = "owner";
/// Shortest accepted `MARGINALIA_ADMIN_TOKEN`.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Wrong tokens from one IP (IPv6: one /64) within [`LOCKOUT_WINDOW`] before it is locked out.
pub const MAX_FAILURES: u32 = 10;
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(60);

/// The cookie holding a moderation-page session.
pub const SESSION_COOKIE: &str = "marginalia_session";
/// The header every cookie-authenticated call must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a moderation-page session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// What a request presented to prove it comes from a moderator.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The session cookie's value.
    pub session: Option<&'a str>,
    /// The CSRF header's value.
    pub csrf: Option<&'a str>,
}

/// A session just started: the cookie value and the CSRF token, both shown once.
#[derive(Debug)]
pub struct NewSession {
    pub moderator: Moderator,
    pub session_id: String,
    pub csrf_token: String,
}

/// Who performed a moderation action; its name is recorded as `moderated_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderator {
    pub name: String,
}

/// 256 random bits, URL-safe.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new random token: `mrg_` and 43 URL-safe characters.
pub fn generate_token() -> SecretString {
    SecretString::from(format!("mrg_{}", random_secret()))
}

/// The stored form of a token: lowercase hex SHA-256.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// True for a name a stored token may not have: the environment token's, in
/// any case and with any surrounding blanks, so that `moderated_by` always
/// tells the two apart.
pub fn is_reserved_token_name(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case(ENV_TOKEN_NAME)
}

/// Creates and stores a named token; returns it (the only time it is visible).
/// The environment token's name is refused here, whoever asks.
pub async fn create_token(store: &Store, name: &str) -> Result<SecretString, TokenInsertError> {
    if is_reserved_token_name(name) {
        return Err(TokenInsertError::Reserved(name.trim().to_owned()));
    }
    let token = generate_token();
    store
        .insert_token(name, &hash_token(token.expose_secret()))
        .await?;
    Ok(token)
}

/// Checks bearer tokens against the environment token and the stored ones.
pub struct Authenticator {
    store: Store,
    env_token_hash: Option<String>,
    lockout: FailureLockout,
}

impl Authenticator {
    pub fn new(store: Store, env_token: Option<&SecretString>) -> Self {
        Self {
            store,
            env_token_hash: env_token.map(|token| hash_token(token.expose_secret())),
            lockout: FailureLockout::new(MAX_FAILURES, LOCKOUT_WINDOW),
        }
    }

    /// The moderator behind a request: a bearer token, or else a session
    /// cookie with its CSRF header. 401 when neither proves anything, 403 for a
    /// session without the right CSRF header, and 429 while the client is
    /// locked out (checked first, so a locked-out client cannot keep guessing).
    pub async fn authenticate(
        &self,
        credentials: Credentials<'_>,
        client: IpAddr,
    ) -> Result<Moderator, ApiError> {
        self.lockout.check(client)?;
        if let Some(token) = credentials.authorization.and_then(bearer_token) {
            return self.token_moderator(token, client).await;
        }
        let Some(session_id) = credentials.session else {
            // No credential at all is not a guess; only wrong ones count.
            return Err(ApiError::Unauthorized);
        };
        let (moderator, csrf_token) = self.session_moderator(session_id, client).await?;
        let csrf_matches = credentials
            .csrf
            .is_some_and(|presented| bool::from(presented.as_bytes().ct_eq(csrf_token.as_bytes())));
        if !csrf_matches {
            return Err(ApiError::Forbidden(format!(
                "the {CSRF_HEADER} header of this session is missing or wrong"
            )));
        }
        Ok(moderator)
    }

    /// Trades a token for a new session.
    pub async fn start_session(&self, token: &str, client: IpAddr) -> Result<NewSession, ApiError> {
        self.lockout.check(client)?;
        let moderator = self.token_moderator(token, client).await?;
        let session_id = random_secret();
        let csrf_token = random_secret();
        let expires_at = time::OffsetDateTime::now_utc() + SESSION_LIFETIME;
        self.store
            .insert_session(
                &hash_token(&session_id),
                &moderator.name,
                &hash_token(token),
                &csrf_token,
                expires_at,
            )
            .await?;
        Ok(NewSession {
            moderator,
            session_id,
            csrf_token,
        })
    }

    /// The moderator and CSRF token of a live session, for the page to resume
    /// after a reload (the cookie alone suffices: SameSite=Strict keeps other
    /// sites from sending it, and they cannot read the answer).
    pub async fn resume_session(
        &self,
        session_id: Option<&str>,
        client: IpAddr,
    ) -> Result<(Moderator, String), ApiError> {
        self.lockout.check(client)?;
        let session_id = session_id.ok_or(ApiError::Unauthorized)?;
        self.session_moderator(session_id, client).await
    }

    /// Ends a session (logging out); unknown sessions are ignored.
    pub async fn end_session(&self, session_id: &str) -> Result<(), ApiError> {
        Ok(self.store.delete_session(&hash_token(session_id)).await?)
    }

    async fn token_moderator(&self, token: &str, client: IpAddr) -> Result<Moderator, ApiError> {
        match self.moderator_for(token).await? {
            Some(moderator) => Ok(moderator),
            None => {
                self.lockout.record_failure(client);
                Err(ApiError::Unauthorized)
            }
        }
    }

    /// A live session's moderator, as long as the very token it came from is
    /// still accepted: stored, or the current environment token.
    async fn session_moderator(
        &self,
        session_id: &str,
        client: IpAddr,
    ) -> Result<(Moderator, String), ApiError> {
        let record = self.store.session(&hash_token(session_id)).await?;
        let Some(record) = record.filter(|record| record.expires_at > time::OffsetDateTime::now_utc()) else {
            self.lockout.record_failure(client);
            return Err(ApiError::Unauthorized);
        };
        let is_env_token = self
            .env_token_hash
            .as_ref()
            .is_some_and(|env_hash| bool::from(env_hash.as_bytes().ct_eq(record.credential_hash.as_bytes())));
        if !(record.credential_stored || is_env_token) {
            return Err(ApiError::Unauthorized);
        }
        Ok((
            Moderator {
                name: record.moderator,
            },
            record.csrf_token,
        ))
    }

    async fn moderator_for(&self, token: &str) -> Result<Option<Moderator>, ApiError> {
        let presented = hash_token(token);
        let mut found: Option<String> = None;
        if let Some(env_hash) = &self.env_token_hash
            && bool::from(env_hash.as_bytes().ct_eq(presented.as_bytes()))
        {
            found = Some(ENV_TOKEN_NAME.to_owned());
        }
        for record in self.store.list_tokens().await? {
            // No early exit: every stored hash is compared.
            if bool::from(record.token_hash.as_bytes().ct_eq(presented.as_bytes())) && found.is_none() {
                found = Some(record.name);
            }
        }
        Ok(found.map(|name| Moderator { name }))
    }

    /// Forgets lock-out windows that have passed (called periodically).
    pub fn prune(&self) {
        self.lockout.prune();
    }
}

/// The value of one cookie in a `Cookie` header.
pub fn cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// `Bearer TOKEN` → `TOKEN` (scheme case-insensitive, as RFC 7235 says).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Remembers each client's recent failures (at most `max_failures` of them)
/// and locks it out while `max_failures` fall within one `window`: a sliding
/// window, so failures straddling a minute boundary still count together.
struct FailureLockout {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl FailureLockout {
    fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        let failures = self.lock();
        let Some(recent) = failures.get(&client_key(client)) else {
            return Ok(());
        };
        // Only the last `max_failures` are kept, so the oldest of a full list
        // is the one whose expiry ends the lock-out.
        match recent.front() {
            Some(oldest) if recent.len() as u32 >= self.max_failures && oldest.elapsed() < self.window => {
                let remaining = self.window - oldest.elapsed();
                Err(ApiError::RateLimited {
                    retry_after_secs: remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0),
                })
            }
            _ => Ok(()),
        }
    }

    fn record_failure(&self, client: IpAddr) {
        let mut failures = self.lock();
        let recent = failures.entry(client_key(client)).or_default();
        recent.push_back(Instant::now());
        while recent.len() as u32 > self.max_failures {
            recent.pop_front();
        }
    }

    fn prune(&self) {
        let mut failures = self.lock();
        failures.retain(|_, recent| recent.back().is_some_and(|last| last.elapsed() < self.window));
        failures.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_random_and_prefixed() {
        let a = generate_token();
        let b = generate_token();
        assert!(a.expose_secret().starts_with("mrg_"));
        assert_eq!(a.expose_secret().len(), 4 + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_environment_token_name_is_reserved_in_any_case() {
        for name in ["admin", "Admin", " ADMIN "] {
            assert!(is_reserved_token_name(name), "{name}");
        }
        for name in ["admins", "owner", "ad min"] {
            assert!(!is_reserved_token_name(name), "{name}");
        }
    }

    #[tokio::test]
    async fn the_reserved_name_is_refused_by_create_token_itself() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("auth.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        assert!(matches!(
            create_token(&store, " Admin ").await,
            Err(TokenInsertError::Reserved(name)) if name == "Admin"
        ));
        assert!(store.list_tokens().await.unwrap().is_empty());
        assert!(create_token(&store, "owner").await.is_ok());
    }

    #[test]
    fn bearer_tokens_are_parsed_case_insensitively() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let header = "theme=dark; marginalia_session=abc; xmarginalia_session=evil";
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value("marginalia_session=", SESSION_COOKIE), None);
        assert_eq!(cookie_value("other=1", SESSION_COOKIE), None);
    }

    #[test]
    fn the_tenth_failure_locks_the_client_out_until_the_window_passes() {
        let lockout = FailureLockout::new(3, Duration::from_millis(200));
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert!(lockout.check(client).is_ok());
            lockout.record_failure(client);
        }
        assert!(matches!(
            lockout.check(client),
            Err(ApiError::RateLimited { retry_after_secs: 1 })
        ));
        assert!(lockout.check(other).is_ok(), "other clients are not affected");
        std::thread::sleep(Duration::from_millis(250));
        assert!(lockout.check(client).is_ok());
        lockout.prune();
        assert!(lockout.lock().is_empty());
    }

    #[test]
    fn failures_straddling_a_window_boundary_still_count_together() {
        let lockout = FailureLockout::new(4, Duration::from_millis(300));
        let client: IpAddr = "192.0.2.9".parse().unwrap();
        lockout.record_failure(client);
        lockout.record_failure(client);
        std::thread::sleep(Duration::from_millis(200));
        lockout.record_failure(client);
        assert!(lockout.check(client).is_ok(), "three failures are not yet four");
        lockout.record_failure(client);
        assert!(lockout.check(client).is_err());
        // Once the first two age out, two remain: unlocked.
        std::thread::sleep(Duration::from_millis(150));
        assert!(lockout.check(client).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_locked_out_by_its_64_prefix() {
        let lockout = FailureLockout::new(2, Duration::from_secs(60));
        lockout.record_failure("2001:db8::1".parse().unwrap());
        lockout.record_failure("2001:db8::2".parse().unwrap());
        assert!(lockout.check("2001:db8::ffff".parse().unwrap()).is_err());
        assert!(lockout.check("2001:db8:0:1::1".parse().unwrap()).is_ok());
    }
}
