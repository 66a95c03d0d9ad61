//! The form token: a signed time stamp the widget fetches when it shows the
//! form (`GET /api/form-token`) and sends back with the comment
//! (`form_token`), so the service can tell how long the form was on screen.
//! People take longer than a few seconds to write a comment; scripts do not.
//!
//! Layout, base64url without padding (32 characters):
//!
//! ```text
//! version (1) | issued_at, Unix milliseconds (8, big-endian) | MAC (15)
//! ```
//!
//! The MAC is HMAC-SHA256 over the first nine bytes, cut to 15 bytes (120
//! bits: plenty against forgery, and it keeps the token short), keyed with a
//! key derived from the service's signing secret (`LinkSecret::derive`), so
//! every instance of one database issues and accepts the same tokens and a
//! `marginalia secret rotate` renews them. The token is not single use and
//! has no expiry: it only proves "issued at least this long ago", which a
//! bot can also get by waiting, and that costs it time.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use super::FormAge;
use crate::notify::links::LinkSecret;

const VERSION: u8 = 1;
const PAYLOAD_LEN: usize = 1 + 8;
const MAC_LEN: usize = 15;
/// A token issued this far in the future still counts (clocks of
/// instances differ a little); later ones are invalid.
const CLOCK_SKEW: Duration = Duration::from_secs(5);
/// Longest text looked at as a token; anything longer is invalid unread.
const MAX_TOKEN_CHARS: usize = 64;

/// The key that signs and checks form tokens.
#[derive(Clone)]
pub struct FormTokenKey([u8; 32]);

impl std::fmt::Debug for FormTokenKey {
    /// Redacted: a logged value must never leak the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormTokenKey(<redacted>)")
    }
}

impl FormTokenKey {
    /// The form-token key of the service whose signing secret is `secret`.
    pub fn from_secret(secret: &LinkSecret) -> Self {
        Self(secret.derive("form token"))
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut cut = [0u8; MAC_LEN];
        cut.copy_from_slice(&full[..MAC_LEN]);
        cut
    }

    /// A token issued at `now`.
    pub fn issue(&self, now: OffsetDateTime) -> String {
        let millis = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&millis.to_be_bytes());
        let mac = self.mac(&bytes);
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// How long before `now` the token was issued; [`FormAge::Missing`] for
    /// no token (or an empty one, as a form without the widget sends), and
    /// [`FormAge::Invalid`] for one that does not verify or was issued in the
    /// future.
    pub fn age(&self, token: Option<&str>, now: OffsetDateTime) -> FormAge {
        let token = match token.map(str::trim) {
            None | Some("") => return FormAge::Missing,
            Some(token) if token.len() > MAX_TOKEN_CHARS => return FormAge::Invalid,
            Some(token) => token,
        };
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else {
            return FormAge::Invalid;
        };
        if bytes.len() != PAYLOAD_LEN + MAC_LEN || bytes[0] != VERSION {
            return FormAge::Invalid;
        }
        let (payload, mac) = bytes.split_at(PAYLOAD_LEN);
        let mut check = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        check.update(payload);
        // Constant time, on the truncated MAC.
        if check.verify_truncated_left(mac).is_err() {
            return FormAge::Invalid;
        }
        let issued = i64::from_be_bytes(payload[1..].try_into().expect("eight bytes"));
        let now_millis = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let age = now_millis.saturating_sub(issued);
        if age < -(CLOCK_SKEW.as_millis() as i64) {
            return FormAge::Invalid;
        }
        FormAge::Shown(Duration::from_millis(age.max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FormTokenKey {
        FormTokenKey::from_secret(&LinkSecret::generate())
    }

    #[test]
    fn a_token_tells_its_age() {
        let key = key();
        let issued = OffsetDateTime::now_utc();
        let token = key.issue(issued);
        assert_eq!(token.len(), 32);
        let later = issued + time::Duration::milliseconds(3500);
        assert_eq!(
            key.age(Some(&token), later),
            FormAge::Shown(Duration::from_millis(3500))
        );
        assert_eq!(key.age(Some(&token), issued), FormAge::Shown(Duration::ZERO));
    }

    #[test]
    fn missing_forged_garbled_and_future_tokens_are_told_apart() {
        let key = key();
        let now = OffsetDateTime::now_utc();
        assert_eq!(key.age(None, now), FormAge::Missing);
        assert_eq!(key.age(Some(" "), now), FormAge::Missing);
        assert_eq!(key.age(Some("not a token!"), now), FormAge::Invalid);
        assert_eq!(key.age(Some(&"A".repeat(500)), now), FormAge::Invalid);
        // Signed with another key.
        let other = super::tests::key().issue(now);
        assert_eq!(key.age(Some(&other), now), FormAge::Invalid);
        // Back-dated by hand: the MAC no longer matches.
        let mut bytes = URL_SAFE_NO_PAD.decode(key.issue(now)).unwrap();
        bytes[5] ^= 1;
        assert_eq!(
            key.age(Some(&URL_SAFE_NO_PAD.encode(bytes)), now),
            FormAge::Invalid
        );
        let future = key.issue(now + time::Duration::minutes(1));
        assert_eq!(key.age(Some(&future), now), FormAge::Invalid);
    }
}
