//! Who the client is, and how often it may submit.
//!
//! The client is the socket's peer, unless that peer is a trusted proxy: then
//! `X-Forwarded-For` is read right to left, skipping trusted proxies, and the
//! first untrusted address is the client. Everything left of it was written by
//! the client and proves nothing. `Forwarded` and `X-Real-IP` are ignored.
//! IPv6 clients are keyed by their /64, which one host usually controls whole.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

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

/// The per-client limit on comment submissions.
pub struct SubmissionLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl SubmissionLimiter {
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one submission from the client's allowance, or says how many whole
    /// seconds until the next one is allowed.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&client_key(client)).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }

    /// Drops clients whose allowance has refilled, so the store stays bounded
    /// however many addresses pass by (called periodically).
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Clients currently tracked.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }
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

    #[test]
    fn the_limiter_allows_the_burst_then_says_when_to_retry() {
        let limiter = SubmissionLimiter::new(NonZeroU32::new(1).unwrap(), NonZeroU32::new(2).unwrap());
        assert!(limiter.check(ip("192.0.2.1")).is_ok());
        assert!(limiter.check(ip("192.0.2.1")).is_ok());
        let retry = limiter.check(ip("192.0.2.1")).unwrap_err();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(
            limiter.check(ip("192.0.2.2")).is_ok(),
            "another client has its own bucket"
        );
        // A different address in the same /64 shares the bucket.
        assert!(limiter.check(ip("2001:db8::1")).is_ok());
        assert!(limiter.check(ip("2001:db8::2")).is_ok());
        assert!(limiter.check(ip("2001:db8::3")).is_err());
        assert_eq!(limiter.tracked_clients(), 3);
    }
}
