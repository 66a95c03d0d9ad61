//! Signed one-click tokens: the part of every link in a mail that proves the
//! service wrote it (moderate a comment, confirm a subscription, unsubscribe).
//!
//! A token is a small binary payload followed by its HMAC-SHA256, the whole
//! encoded as base64url without padding, so it fits one URL path segment:
//!
//! ```text
//! version (1) | purpose (1) | subject (8, big-endian) | expires_at (8, big-endian)
//!   | nonce (16) | recipient length (2, big-endian) | recipient (UTF-8) | HMAC (32)
//! ```
//!
//! The purpose byte is signed with the rest, so an unsubscribe token can never
//! approve a comment, and a token for one comment or action names no other.
//! The nonce makes every token distinct, so the caller can record it when the
//! token is used and refuse it the second time (single use is the caller's part,
//! in the same transaction as the action).
//!
//! Tokens are signed, not encrypted: whoever holds one can read the recipient's
//! address in it. Each goes only to that recipient, but it also reaches the
//! service's access log as part of a path.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

use crate::domain::{CommentId, Email};

type HmacSha256 = Hmac<Sha256>;

/// The layout version; a token of another version is malformed.
const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 8 + 8 + NONCE_LEN + 2;
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;
const SECRET_LEN: usize = 32;
/// Longest token accepted for decoding: the longest valid recipient (254
/// characters of up to 4 bytes) fits with room to spare; anything longer is
/// refused before any work is spent on it.
pub const MAX_TOKEN_CHARS: usize = 2048;

/// The key that signs and checks every link: 32 random bytes.
///
/// The service generates it once and keeps it in the database, so every
/// instance agrees; replacing it invalidates every link issued before.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSecret([u8; SECRET_LEN]);

impl LinkSecret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The form kept in the database: 43 base64url characters.
    pub fn to_stored(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Reads the form written by [`LinkSecret::to_stored`].
    pub fn from_stored(stored: &str) -> Result<Self, InvalidSecret> {
        let bytes = URL_SAFE_NO_PAD.decode(stored.trim()).map_err(|_| InvalidSecret)?;
        bytes.try_into().map(Self).map_err(|_| InvalidSecret)
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }

    /// A key for another purpose than links (`label` names it), derived
    /// from this one as HMAC-SHA256(secret, label): other signatures of the
    /// service (the spam defence's form tokens) need no secret of their own,
    /// a rotation renews them too, and no such signature can pass for a link.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"marginalia derived key\0");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for LinkSecret {
    /// Redacted: a logged value must never leak the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSecret(<redacted>)")
    }
}

/// A stored link secret that is not 32 bytes of base64url.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored link secret is not 32 bytes of base64url")]
pub struct InvalidSecret;

/// What a moderator's one-click link does to a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModerationAction {
    Approve,
    Reject,
    Spam,
}

impl ModerationAction {
    pub const ALL: [ModerationAction; 3] = [Self::Approve, Self::Reject, Self::Spam];

    /// The lowercase spelling used in pages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Spam => "spam",
        }
    }
}

/// Which subscriptions an unsubscribe link ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnsubscribeScope {
    /// The one subscription the token names (one thread).
    Thread,
    /// Every subscription of the token's recipient.
    Everything,
}

/// What a token may be used for. Signed with the rest of the token, so no
/// token can be used for a purpose other than the one it was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Moderate the comment named by the subject.
    Moderate(ModerationAction),
    /// Confirm the subscription named by the subject (double opt-in).
    ConfirmSubscription,
    /// End the subscription named by the subject, or all of the recipient's.
    Unsubscribe(UnsubscribeScope),
}

impl Purpose {
    fn to_byte(self) -> u8 {
        match self {
            Self::Moderate(ModerationAction::Approve) => 1,
            Self::Moderate(ModerationAction::Reject) => 2,
            Self::Moderate(ModerationAction::Spam) => 3,
            Self::ConfirmSubscription => 10,
            Self::Unsubscribe(UnsubscribeScope::Thread) => 20,
            Self::Unsubscribe(UnsubscribeScope::Everything) => 21,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Moderate(ModerationAction::Approve),
            2 => Self::Moderate(ModerationAction::Reject),
            3 => Self::Moderate(ModerationAction::Spam),
            10 => Self::ConfirmSubscription,
            20 => Self::Unsubscribe(UnsubscribeScope::Thread),
            21 => Self::Unsubscribe(UnsubscribeScope::Everything),
            _ => return None,
        })
    }
}

/// A token's random part, distinct for every token issued: recording it when
/// the token is used makes the token single use.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce([u8; NONCE_LEN]);

impl Nonce {
    pub fn random() -> Self {
        let mut bytes = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// 32 hex digits, the form to record as "used".
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.to_hex())
    }
}

/// What a token says, once its signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub purpose: Purpose,
    /// A comment id for [`Purpose::Moderate`], a subscription id otherwise.
    pub subject: i64,
    /// Whom the link was sent to: recorded as `moderated_by = email:<recipient>`,
    /// or the subscriber's address.
    pub recipient: Email,
    /// Unix seconds from which the token is refused as expired.
    pub expires_at: i64,
    pub nonce: Nonce,
}

impl Claims {
    /// Claims with a fresh nonce that expire `ttl` after `now`.
    pub fn new(purpose: Purpose, subject: i64, recipient: Email, now: OffsetDateTime, ttl: Duration) -> Self {
        Self {
            purpose,
            subject,
            recipient,
            expires_at: (now + ttl).unix_timestamp(),
            nonce: Nonce::random(),
        }
    }

    /// Claims for a moderator's one-click link on a comment.
    pub fn moderate(
        action: ModerationAction,
        comment: CommentId,
        recipient: Email,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Self {
        Self::new(Purpose::Moderate(action), comment, recipient, now, ttl)
    }
}

/// Why a token was refused. Nothing about the token is acted on in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token at all: bad encoding, wrong length or layout (400).
    #[error("the link is malformed")]
    Malformed,
    /// Well formed, but not signed with the current secret: tampered with,
    /// made up, or issued before the secret was rotated (400).
    #[error("the link's signature is not valid")]
    BadSignature,
    /// Genuine, but past its expiry (410).
    #[error("the link has expired")]
    Expired,
}

impl LinkError {
    /// The HTTP status of the page that says so.
    pub fn status(self) -> http::StatusCode {
        match self {
            Self::Malformed | Self::BadSignature => http::StatusCode::BAD_REQUEST,
            Self::Expired => http::StatusCode::GONE,
        }
    }
}

/// Encodes and signs `claims` into a token for a URL path segment.
pub fn sign(secret: &LinkSecret, claims: &Claims) -> String {
    let recipient = claims.recipient.as_str().as_bytes();
    // An Email is at most 254 characters, so its length always fits two bytes.
    let recipient_len = u16::try_from(recipient.len()).expect("an email address fits 64 KiB");
    let mut bytes = Vec::with_capacity(HEADER_LEN + recipient.len() + MAC_LEN);
    bytes.push(VERSION);
    bytes.push(claims.purpose.to_byte());
    bytes.extend_from_slice(&claims.subject.to_be_bytes());
    bytes.extend_from_slice(&claims.expires_at.to_be_bytes());
    bytes.extend_from_slice(&claims.nonce.0);
    bytes.extend_from_slice(&recipient_len.to_be_bytes());
    bytes.extend_from_slice(recipient);
    let mut mac = secret.mac();
    mac.update(&bytes);
    bytes.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a token's signature and expiry at `now` (unix seconds) and returns
/// what it says. The signature is checked in constant time before any field
/// is read, so a forged token learns nothing from how it is refused.
pub fn verify(secret: &LinkSecret, token: &str, now: i64) -> Result<Claims, LinkError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(LinkError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| LinkError::Malformed)?;
    if bytes.len() < HEADER_LEN + MAC_LEN {
        return Err(LinkError::Malformed);
    }
    let (payload, signature) = bytes.split_at(bytes.len() - MAC_LEN);
    let mut mac = secret.mac();
    mac.update(payload);
    mac.verify_slice(signature).map_err(|_| LinkError::BadSignature)?;

    let claims = decode_payload(payload).ok_or(LinkError::Malformed)?;
    if now >= claims.expires_at {
        return Err(LinkError::Expired);
    }
    Ok(claims)
}

/// Reads a signed payload; `None` when its layout is not this version's.
fn decode_payload(payload: &[u8]) -> Option<Claims> {
    let (header, recipient) = payload.split_at_checked(HEADER_LEN)?;
    if header[0] != VERSION {
        return None;
    }
    let purpose = Purpose::from_byte(header[1])?;
    let subject = i64::from_be_bytes(header[2..10].try_into().ok()?);
    let expires_at = i64::from_be_bytes(header[10..18].try_into().ok()?);
    let nonce = Nonce(header[18..34].try_into().ok()?);
    let recipient_len = usize::from(u16::from_be_bytes(header[34..36].try_into().ok()?));
    if recipient.len() != recipient_len {
        return None;
    }
    let recipient = Email::parse(std::str::from_utf8(recipient).ok()?).ok()?;
    Some(Claims {
        purpose,
        subject,
        recipient,
        expires_at,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;
    use time::{Duration, OffsetDateTime};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(NOW).unwrap()
    }

    fn moderator() -> Email {
        Email::parse("maya.moderator@clinic.example").unwrap()
    }

    fn approve_claims() -> Claims {
        Claims::moderate(
            ModerationAction::Approve,
            42,
            moderator(),
            now(),
            Duration::days(7),
        )
    }

    #[test]
    fn a_signed_token_verifies_to_the_same_claims() {
        let secret = LinkSecret::generate();
        for purpose in [
            Purpose::Moderate(ModerationAction::Approve),
            Purpose::Moderate(ModerationAction::Reject),
            Purpose::Moderate(ModerationAction::Spam),
            Purpose::ConfirmSubscription,
            Purpose::Unsubscribe(UnsubscribeScope::Thread),
            Purpose::Unsubscribe(UnsubscribeScope::Everything),
        ] {
            let claims = Claims::new(purpose, -7, moderator(), now(), Duration::hours(1));
            let token = sign(&secret, &claims);
            assert_eq!(verify(&secret, &token, NOW), Ok(claims));
        }
    }

    #[test]
    fn a_token_is_one_url_safe_path_segment_of_modest_length() {
        let token = sign(&LinkSecret::generate(), &approve_claims());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        assert!(token.len() < 160, "{} characters", token.len());
    }

    #[test]
    fn every_token_is_distinct_even_for_the_same_claims() {
        let secret = LinkSecret::generate();
        let first = Claims::moderate(
            ModerationAction::Approve,
            42,
            moderator(),
            now(),
            Duration::days(7),
        );
        let second = Claims::moderate(
            ModerationAction::Approve,
            42,
            moderator(),
            now(),
            Duration::days(7),
        );
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(sign(&secret, &first), sign(&secret, &second));
    }

    #[test]
    fn changing_any_byte_breaks_the_signature() {
        let secret = LinkSecret::generate();
        let token = sign(&secret, &approve_claims());
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for index in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut tampered = bytes.clone();
                tampered[index] ^= flip;
                let tampered = URL_SAFE_NO_PAD.encode(&tampered);
                assert_eq!(
                    verify(&secret, &tampered, NOW),
                    Err(LinkError::BadSignature),
                    "byte {index} ^ {flip:#x}"
                );
            }
        }
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = sign(&LinkSecret::generate(), &approve_claims());
        assert_eq!(
            verify(&LinkSecret::generate(), &token, NOW),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn a_token_works_until_its_expiry_and_not_from_then_on() {
        let secret = LinkSecret::generate();
        let claims = approve_claims();
        let token = sign(&secret, &claims);
        assert!(verify(&secret, &token, claims.expires_at - 1).is_ok());
        assert_eq!(
            verify(&secret, &token, claims.expires_at),
            Err(LinkError::Expired)
        );
        assert_eq!(verify(&secret, &token, i64::MAX), Err(LinkError::Expired));
        assert_eq!(LinkError::Expired.status(), http::StatusCode::GONE);
    }

    #[test]
    fn a_tampered_expiry_is_a_bad_signature_not_an_extension() {
        let secret = LinkSecret::generate();
        let claims = approve_claims();
        let mut bytes = URL_SAFE_NO_PAD.decode(sign(&secret, &claims)).unwrap();
        bytes[10..18].copy_from_slice(&i64::MAX.to_be_bytes());
        let extended = URL_SAFE_NO_PAD.encode(&bytes);
        assert_eq!(
            verify(&secret, &extended, claims.expires_at + 1),
            Err(LinkError::BadSignature)
        );
    }

    /// Swapping the purpose byte of a genuine token (to make an unsubscribe
    /// link approve, say) breaks its signature; and a verified token reports
    /// the purpose it was issued for, which the caller matches on.
    #[test]
    fn a_token_cannot_be_used_for_another_purpose() {
        let secret = LinkSecret::generate();
        let unsubscribe = Claims::new(
            Purpose::Unsubscribe(UnsubscribeScope::Everything),
            42,
            moderator(),
            now(),
            Duration::days(7),
        );
        let token = sign(&secret, &unsubscribe);
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for purpose in [
            Purpose::Moderate(ModerationAction::Approve),
            Purpose::ConfirmSubscription,
            Purpose::Unsubscribe(UnsubscribeScope::Thread),
        ] {
            bytes[1] = purpose.to_byte();
            assert_eq!(
                verify(&secret, &URL_SAFE_NO_PAD.encode(&bytes), NOW),
                Err(LinkError::BadSignature)
            );
        }
        let claims = verify(&secret, &token, NOW).unwrap();
        assert!(!matches!(claims.purpose, Purpose::Moderate(_)));
    }

    #[test]
    fn truncated_garbage_and_huge_tokens_are_malformed() {
        let secret = LinkSecret::generate();
        let token = sign(&secret, &approve_claims());
        for bad in [
            "",
            "a",
            "!!!!",
            "not a token",
            "AAAA",
            &token[..token.len() - 1],
            &token[..10],
            &format!("{token}="),
            &format!("{token}.x"),
            &"A".repeat(MAX_TOKEN_CHARS + 1),
            &"A".repeat(10_000_000),
        ] {
            assert_eq!(
                verify(&secret, bad, NOW).err().map(LinkError::status),
                Some(http::StatusCode::BAD_REQUEST),
                "{:?}",
                &bad[..bad.len().min(40)]
            );
        }
        // Too short to hold a signature at all.
        let short = URL_SAFE_NO_PAD.encode([0u8; HEADER_LEN + MAC_LEN - 1]);
        assert_eq!(verify(&secret, &short, NOW), Err(LinkError::Malformed));
    }

    /// A payload that is correctly signed but not of this layout (another
    /// version, an unknown purpose, a wrong length) is malformed, not trusted.
    #[test]
    fn a_signed_payload_of_another_layout_is_malformed() {
        let secret = LinkSecret::generate();
        let genuine = URL_SAFE_NO_PAD.decode(sign(&secret, &approve_claims())).unwrap();
        let payload = &genuine[..genuine.len() - MAC_LEN];
        let resign = |payload: &[u8]| {
            let mut mac = secret.mac();
            mac.update(payload);
            let mut bytes = payload.to_vec();
            bytes.extend_from_slice(&mac.finalize().into_bytes());
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let mut other_version = payload.to_vec();
        other_version[0] = 2;
        let mut unknown_purpose = payload.to_vec();
        unknown_purpose[1] = 99;
        let mut wrong_length = payload.to_vec();
        wrong_length.push(b'x');
        let mut not_an_address = payload[..HEADER_LEN].to_vec();
        not_an_address[HEADER_LEN - 2..].copy_from_slice(&3u16.to_be_bytes());
        not_an_address.extend_from_slice(b"a\xffb");
        for bad in [other_version, unknown_purpose, wrong_length, not_an_address] {
            assert_eq!(verify(&secret, &resign(&bad), NOW), Err(LinkError::Malformed));
        }
        assert!(verify(&secret, &resign(payload), NOW).is_ok());
    }

    #[test]
    fn the_secret_round_trips_through_its_stored_form() {
        let secret = LinkSecret::generate();
        let stored = secret.to_stored();
        assert_eq!(stored.len(), 43);
        assert_eq!(LinkSecret::from_stored(&stored), Ok(secret.clone()));
        assert_ne!(LinkSecret::generate(), secret);
        for bad in [
            "",
            "short",
            &stored[..42],
            &format!("{stored}AA"),
            "=".repeat(43).as_str(),
        ] {
            assert_eq!(LinkSecret::from_stored(bad), Err(InvalidSecret), "{bad:?}");
        }
        assert!(!format!("{secret:?}").contains(&stored));
    }

    proptest! {
        #[test]
        fn verify_never_panics_on_any_string(token in "\\PC{0,300}") {
            let _ = verify(&LinkSecret::generate(), &token, NOW);
        }

        #[test]
        fn verify_never_panics_on_any_base64url_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let token = URL_SAFE_NO_PAD.encode(&bytes);
            prop_assert!(verify(&LinkSecret::generate(), &token, NOW).is_err());
        }
    }
}
