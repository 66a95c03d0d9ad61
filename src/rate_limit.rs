//! Who the client is, and how often it may submit.
//!
//! The client is the socket's peer, unless that peer is a trusted proxy: then
//! `X-Forwarded-For` is read right to left, skipping trusted proxies, and the
//! first untrusted address is the client. Everything left of it was written by
//! the client and proves nothing. `Forwarded` and `X-Real-IP` are ignored.
//! IPv6 clients are keyed by their /64, which one host usually controls whole.
//!
//! # The submission limit, on one instance and on several
//!
//! Every instance keeps an in-process `governor` limiter per client key. On
//! SQLite (one instance per file) that is the whole limit, and checking it
//! costs no await beyond a future that is ready at once. On PostgreSQL,
//! several instances may serve one site, and per-instance counters would let
//! a client through N times over; so a submission the in-process limiter
//! allows must also take a cell of the client's shared allowance, a GCRA
//! state kept in PostgreSQL and updated by one atomic statement with the
//! database's clock (`store/rate_limit.rs` has the statement and why it is
//! right). Both use the same quota, so one client gets the configured burst
//! and rate in total, however the balancer spreads its requests.
//!
//! The in-process limiter stays in front: a flood from one client is refused
//! without a database round trip, and the shared check runs only when the
//! local one allows. The price is small and falls only on a client already
//! refused: a submission the local limiter let through but the shared limit
//! refused still counts locally, so that instance's local TAT can run ahead
//! of the shared one by at most one interval (it never exceeds the shared TAT
//! plus one interval: each local-only cell was taken while the shared TAT was
//! within one interval of its cap), which delays that client's next accepted
//! submission on that instance by at most one interval.
//!
//! When the shared limit cannot be asked in time ([`SHARED_CHECK_TIMEOUT`],
//! connection wait included), the submission is refused with the store's
//! "unavailable" (503 with `Retry-After`), never waved through: a limit that
//! fails open whenever PostgreSQL is slow is no limit in the moment it is
//! needed most (a flood is what makes it slow), and a submission could not
//! be stored while the database is away anyway.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::store::{PostgresStore, SharedVerdict, Store, StoreError};

/// The longest the shared limit may take to answer (waiting for a pooled
/// connection included) before the submission is refused as unavailable.
/// PostgreSQL's pool gives up on a connection after 2 s too.
pub const SHARED_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `::ffff:192.0.2.1` and `192.0.2.1` are the same client.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client is limited by: its IPv4 address, or its IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Finds the client address of a request.
#[derive(Debug, Clone, Default)]
pub struct ClientResolver {
    trusted_proxies: Vec<IpNet>,
}

impl ClientResolver {
    pub fn new(trusted_proxies: Vec<IpNet>) -> Self {
        Self { trusted_proxies }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` values
    /// in the order the headers arrived.
    pub fn client_ip<'a>(&self, peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let mut client = canonical_ip(peer);
        if !self.is_trusted(client) {
            return client;
        }
        let hops: Vec<&str> = forwarded_for
            .into_iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            // A hop that is not an address was not written by a proxy we trust:
            // stop at the last address we could believe.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip()))
        .map(canonical_ip)
}

/// Why a submission may not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The client is over its limit; it may try again in this many whole
    /// seconds (at least 1).
    #[error("too many submissions; try again in {retry_after_secs} seconds")]
    Limited { retry_after_secs: u64 },
    /// The shared limit could not be asked (PostgreSQL down or too slow):
    /// refused rather than allowed unchecked.
    #[error("the shared rate limit could not be checked")]
    Unchecked(#[source] StoreError),
}

/// The per-client limit on comment submissions: in process, and on
/// PostgreSQL shared by every instance as well.
pub struct SubmissionLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    shared: Option<SharedLimit>,
}

/// The quota of the shared limit, in the GCRA's terms, and where it lives.
struct SharedLimit {
    store: PostgresStore,
    /// A minute divided by the sustained rate.
    interval: Duration,
    burst: u32,
}

impl SubmissionLimiter {
    /// A limiter of this instance alone.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            shared: None,
        }
    }

    /// The limiter for `store`: shared by all instances on PostgreSQL, in
    /// process on SQLite.
    pub fn for_store(per_minute: NonZeroU32, burst: NonZeroU32, store: &Store) -> Self {
        let mut limiter = Self::new(per_minute, burst);
        if let Store::Postgres(postgres) = store {
            limiter.shared = Some(SharedLimit {
                store: postgres.clone(),
                interval: Duration::from_secs(60) / per_minute.get(),
                burst: burst.get(),
            });
        }
        limiter
    }

    /// Takes one submission from the client's allowance, or says how many whole
    /// seconds until the next one is allowed. The in-process limiter first;
    /// the shared one (PostgreSQL) only when that allows.
    pub async fn check(&self, client: IpAddr) -> Result<(), Refusal> {
        let key = client_key(client);
        self.limiter
            .check_key(&key)
            .map_err(|not_until| Refusal::Limited {
                retry_after_secs: whole_seconds(not_until.wait_time_from(self.clock.now())),
            })?;
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let verdict = shared
            .store
            .take_rate_limit_cell(
                &key.to_string(),
                shared.interval,
                shared.burst,
                SHARED_CHECK_TIMEOUT,
            )
            .await
            .map_err(Refusal::Unchecked)?;
        match verdict {
            SharedVerdict::Allowed => Ok(()),
            SharedVerdict::Refused { retry_after } => Err(Refusal::Limited {
                retry_after_secs: whole_seconds(retry_after),
            }),
        }
    }

    /// Drops clients whose allowance has refilled, so the store stays bounded
    /// however many addresses pass by (called periodically): the in-process
    /// ones, and on PostgreSQL the shared cells (every instance does it; the
    /// delete is idempotent). A failing delete is logged and tried again at
    /// the next call.
    pub async fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        if let Some(shared) = &self.shared {
            match shared.store.prune_rate_limit_cells().await {
                Ok(deleted) => tracing::debug!(deleted, "expired shared rate-limit cells deleted"),
                Err(error) => tracing::warn!(%error, "could not prune the shared rate-limit cells"),
            }
        }
    }

    /// Clients currently tracked in process.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }
}

/// A wait in whole seconds, rounded up, at least 1 (`Retry-After: 0` would
/// invite an immediate retry that is refused again).
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolver(trusted: &[&str]) -> ClientResolver {
        ClientResolver::new(trusted.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let r = resolver(&[]);
        assert_eq!(
            r.client_ip(ip("198.51.100.9"), ["203.0.113.1"]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let r = resolver(&["10.0.0.0/8"]);
        // The client claims to be 1.1.1.1; the proxy appended the real address.
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), ["1.1.1.1, 203.0.113.5, 10.0.0.3"]),
            ip("203.0.113.5")
        );
        // Several headers are one list, in order.
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), ["1.1.1.1", "203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), ["[2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn garbage_in_the_header_stops_the_walk() {
        let r = resolver(&["10.0.0.0/8"]);
        assert_eq!(
            r.client_ip(ip("10.0.0.2"), ["203.0.113.5, unknown"]),
            ip("10.0.0.2")
        );
        assert_eq!(r.client_ip(ip("10.0.0.2"), Vec::<&str>::new()), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let r = resolver(&["10.0.0.1/32"]);
        assert_eq!(
            r.client_ip(ip("::ffff:10.0.0.1"), ["::ffff:203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_key(ip("2001:db8:1:2::ffff")),
            client_key(ip("2001:db8:1:2:aaaa::1"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
    }

    #[tokio::test]
    async fn the_limiter_allows_the_burst_then_says_when_to_retry() {
        let limiter = SubmissionLimiter::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(2).unwrap());
        assert!(limiter.check(ip("192.0.2.1")).await.is_ok());
        assert!(limiter.check(ip("192.0.2.1")).await.is_ok());
        let Err(Refusal::Limited { retry_after_secs }) = limiter.check(ip("192.0.2.1")).await else {
            panic!("the third submission is refused");
        };
        assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}");
        assert!(
            limiter.check(ip("192.0.2.2")).await.is_ok(),
            "another client has its own bucket"
        );
        // A different address in the same /64 shares the bucket.
        assert!(limiter.check(ip("2001:db8::1")).await.is_ok());
        assert!(limiter.check(ip("2001:db8::2")).await.is_ok());
        assert!(limiter.check(ip("2001:db8::3")).await.is_err());
        assert_eq!(limiter.tracked_clients(), 3);
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up_and_never_zero() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(20)), 20);
        assert_eq!(whole_seconds(Duration::from_millis(20_001)), 21);
    }
}
