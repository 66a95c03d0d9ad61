//! Notifications: telling moderators about waiting comments and readers about
//! replies, by mail and by webhook.
//!
//! This module owns:
//! - [`links`]: the signed one-click tokens behind every button in a mail
//!   (moderate, confirm a subscription, unsubscribe);
//! - [`smtp`]: the SMTP settings (`MARGINALIA_SMTP_URL`, `MARGINALIA_MAIL_FROM`)
//!   and the one lettre transport built from them;
//! - [`mail`]: composing each kind of message (text and HTML alternatives);
//! - [`webhook`]: event payloads (generic JSON, Slack, Discord) and their signature;
//! - [`settings`]: every notification option checked and resolved at start-up;
//! - the retry schedule shared by every delivery ([`next_attempt`]);
//! - which addresses may be mailed at all ([`can_receive_mail`]);
//! - later, the outbox worker that delivers queued messages and webhook calls.
//!
//! What it may call: [`crate::domain`], [`crate::i18n`] (the words of mail) and
//! plain values from the configuration
//! passed in by the caller. It never reads the environment and never touches the
//! store directly; delivery state will go through the outbox only.

pub mod links;
pub mod mail;
pub mod settings;
pub mod smtp;
pub mod webhook;

use std::time::Duration;

pub use settings::{NotifySettings, WebhookSettings};

/// Deliveries the outbox has in flight at once, each mail over its own SMTP
/// connection (the transport's pool keeps as many open, [`smtp`]). One at a
/// time, a backlog drained at ~22 mails/s even from a relay on loopback:
/// each send waits on the far end. Few, so a slow server holds few sends and
/// a mail provider's limit of connections per client (often 5 to 10) is
/// not reached.
pub const SENDS_AT_ONCE: usize = 4;

/// False for an address no mail may go to: one under the special-use
/// `.invalid` domain (RFC 2606, RFC 6761), which importers give to authors
/// their source had no address for (`anonymous+123@disqus.invalid`). Such an
/// address is never sent a confirmation or a reply mail. Nor is an empty
/// one, or anything without an `@`: an anonymized comment keeps an empty
/// email (`crate::people`).
pub fn can_receive_mail(address: &str) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    !(domain == "invalid" || domain.ends_with(".invalid"))
}

/// How long to wait before each retry of a failed delivery: the first comes
/// quickly (a short outage delays mail by seconds), later ones back off to an
/// hour apart. The waits add up to a little over 24 hours; after the last
/// retry fails, the delivery is given up (logged and counted).
pub const RETRY_SCHEDULE: [Duration; 32] = {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    let mut schedule = [Duration::from_secs(HOUR); 32];
    let backoff = [
        10,
        30,
        MINUTE,
        2 * MINUTE,
        5 * MINUTE,
        10 * MINUTE,
        20 * MINUTE,
        30 * MINUTE,
    ];
    let mut i = 0;
    while i < backoff.len() {
        schedule[i] = Duration::from_secs(backoff[i]);
        i += 1;
    }
    schedule
};

/// The wait before the next try of a delivery that has failed `attempts` times
/// (counting the first try), or `None` when it should be given up.
///
/// `next_attempt(1)` is the wait after the first failure.
pub fn next_attempt(attempts: u32) -> Option<Duration> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    RETRY_SCHEDULE.get(index).copied()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{RETRY_SCHEDULE, can_receive_mail, next_attempt};

    #[test]
    fn the_first_retry_comes_within_thirty_seconds() {
        assert!(next_attempt(1).unwrap() <= Duration::from_secs(30));
    }

    #[test]
    fn retries_back_off_and_are_never_more_than_an_hour_apart() {
        for pair in RETRY_SCHEDULE.windows(2) {
            assert!(pair[0] <= pair[1], "{pair:?} does not back off");
        }
        assert!(
            RETRY_SCHEDULE
                .iter()
                .all(|wait| *wait <= Duration::from_secs(3600))
        );
        assert_eq!(*RETRY_SCHEDULE.last().unwrap(), Duration::from_secs(3600));
    }

    #[test]
    fn retries_go_on_for_at_least_a_day_and_then_stop() {
        let total: Duration = (1..).map_while(next_attempt).sum();
        assert!(total >= Duration::from_secs(24 * 3600), "{total:?}");
        assert!(total <= Duration::from_secs(26 * 3600), "{total:?}");
        let tries = u32::try_from(RETRY_SCHEDULE.len()).unwrap();
        assert!(next_attempt(tries).is_some());
        assert_eq!(next_attempt(tries + 1), None);
        assert_eq!(next_attempt(u32::MAX), None);
    }

    #[test]
    fn zero_attempts_has_no_retry_wait() {
        // Nothing has failed yet: the first try is not a retry.
        assert_eq!(next_attempt(0), None);
    }

    #[test]
    fn placeholder_addresses_under_invalid_receive_no_mail() {
        for address in [
            "anonymous+1@disqus.invalid",
            "a@INVALID",
            "a@x.Invalid.",
            "a@invalid",
        ] {
            assert!(!can_receive_mail(address), "{address}");
        }
        // An anonymized comment's email is empty.
        for address in ["", " ", "no-at-sign"] {
            assert!(!can_receive_mail(address), "{address:?}");
        }
        for address in ["ada@example.org", "a@invalid.example", "a@notinvalid"] {
            assert!(can_receive_mail(address), "{address}");
        }
    }
}
