//! The command line and the environment: every option of `serve` is a flag and an
//! environment variable (the flag wins), with defaults that serve a working
//! instance on a fresh machine.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use secrecy::SecretString;

/// Largest accepted request body (the contract's 128 KiB; `openapi.yaml`).
/// A fixed limit, not an option: a comment is at most 10,000 characters.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The SQLite file used when no database URL is configured, relative to the
/// working directory (the Docker image sets `/data/marginalia.db`).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://marginalia.db";

/// `marginalia [serve] [OPTIONS]`, `marginalia migrate`, `marginalia token …`.
#[derive(Debug, Parser)]
#[command(name = "marginalia", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options for `serve`, which is also what plain `marginalia` does.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the comment API, the widget and the moderation page (the default).
    Serve(Config),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage moderator tokens (only their hashes are stored).
    Token {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print it once.
    Create {
        /// A name for the moderator or tool holding it; recorded as `moderated_by`.
        name: String,
    },
    /// List token names and when they were created.
    List,
    /// Revoke a token by name.
    Revoke { name: String },
}

/// Where the comments are stored.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing; `sqlite:///abs/path.db` for an absolute
    /// path) or `postgres://…`. Falls back to DATABASE_URL, then to
    /// `sqlite://marginalia.db`.
    #[arg(long, env = "MARGINALIA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The configured URL: flag, then `MARGINALIA_DATABASE_URL`, then `DATABASE_URL`,
    /// then the SQLite default.
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty()))
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
    }
}

/// Everything `serve` needs. Tests build one as a struct literal (see
/// `tests/api/helpers.rs`) rather than through the command line.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Listen address.
    #[arg(long, env = "MARGINALIA_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// A moderator bearer token (at least 16 characters), named `admin`.
    #[arg(long, env = "MARGINALIA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<SecretString>,

    /// Comma list of blog origins (`https://blog.example.com`) allowed by CORS on
    /// the public API; empty means any origin.
    #[arg(
        long,
        env = "MARGINALIA_ALLOWED_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub allowed_origins: Vec<String>,

    /// Sustained comment submissions per client IP per minute.
    #[arg(long, env = "MARGINALIA_RATE_LIMIT_PER_MINUTE", default_value = "3")]
    pub rate_limit_per_minute: NonZeroU32,

    /// Burst of comment submissions per client IP.
    #[arg(long, env = "MARGINALIA_RATE_LIMIT_BURST", default_value = "3")]
    pub rate_limit_burst: NonZeroU32,

    /// Comma list of IPs/CIDRs whose X-Forwarded-For is believed.
    #[arg(
        long,
        env = "MARGINALIA_TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = "",
        value_parser = parse_trusted_proxy
    )]
    pub trusted_proxies: Vec<Option<IpNet>>,

    /// Open connections at most; more wait to be accepted.
    #[arg(long, env = "MARGINALIA_MAX_CONNECTIONS", default_value = "4096")]
    pub max_connections: NonZeroU32,

    /// Tracing filter (falls back to RUST_LOG, then `info`).
    #[arg(long, env = "MARGINALIA_LOG")]
    pub log: Option<String>,

    /// Bytes of memory for the cache of serialized public threads; 0 turns it off.
    #[arg(long, env = "MARGINALIA_THREAD_CACHE_BYTES", default_value = "16777216")]
    pub thread_cache_bytes: usize,

    /// Seconds a client has to send its request headers before the connection
    /// is closed (slow-client protection).
    #[arg(long, env = "MARGINALIA_HEADER_READ_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub header_read_timeout: Duration,

    /// Seconds a request may take from its headers to its answer, body upload
    /// included; later it gets a 408 and the connection is closed.
    #[arg(long, env = "MARGINALIA_REQUEST_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub request_timeout: Duration,

    /// Seconds in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "MARGINALIA_SHUTDOWN_GRACE", default_value = "20", value_parser = parse_seconds)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The tracing filter: flag, `MARGINALIA_LOG`, `RUST_LOG`, then `info`.
    pub fn log_filter(&self) -> String {
        self.log
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty()))
            .unwrap_or_else(|| "info".to_owned())
    }

    /// The trusted proxy networks; empty entries (from an empty list) are dropped.
    pub fn trusted_networks(&self) -> Vec<IpNet> {
        self.trusted_proxies.iter().flatten().copied().collect()
    }

    /// The allowed CORS origins; empty entries are dropped.
    pub fn origins(&self) -> Vec<String> {
        self.allowed_origins
            .iter()
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect()
    }
}

impl Default for Config {
    /// The same defaults as the command line, so tests and embedders start from
    /// what a user running `marginalia` gets.
    fn default() -> Self {
        Cli::try_parse_from(["marginalia"])
            .map(|cli| cli.serve)
            .unwrap_or_else(|error| panic!("the built-in defaults must parse: {error}"))
    }
}

/// Accepts `10.0.0.1`, `10.0.0.0/8`, `::1` or `fd00::/8`; an empty item is `None`
/// so that an empty list (the default) parses.
fn parse_trusted_proxy(value: &str) -> Result<Option<IpNet>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(net) = value.parse::<IpNet>() {
        return Ok(Some(net.trunc()));
    }
    value
        .parse::<IpAddr>()
        .map(|ip| Some(IpNet::from(ip)))
        .map_err(|_| format!("`{value}` is neither an IP address nor a CIDR network"))
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{value}` is not a whole number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_accept_addresses_and_networks() {
        assert_eq!(parse_trusted_proxy(""), Ok(None));
        assert_eq!(
            parse_trusted_proxy("10.1.2.3/8"),
            Ok(Some("10.0.0.0/8".parse().unwrap()))
        );
        assert_eq!(parse_trusted_proxy("::1"), Ok(Some("::1/128".parse().unwrap())));
        assert!(parse_trusted_proxy("proxy.local").is_err());
    }

    #[test]
    fn serve_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "marginalia",
            "--bind",
            "0.0.0.0:8080",
            "--trusted-proxies",
            "10.0.0.0/8,192.168.1.1",
            "--allowed-origins",
            "https://blog.example.com/, https://other.example",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.bind, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cli.serve.trusted_networks().len(), 2);
        assert_eq!(
            cli.serve.origins(),
            vec!["https://blog.example.com", "https://other.example"]
        );
    }

    #[test]
    fn a_zero_rate_limit_is_refused() {
        assert!(Cli::try_parse_from(["marginalia", "--rate-limit-per-minute", "0"]).is_err());
    }
}
