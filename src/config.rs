//! The command line and the environment: every option of `serve` is a flag and an
//! environment variable (the flag wins), with defaults that serve a working
//! instance on a fresh machine.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use secrecy::SecretString;
use url::Url;

use crate::i18n::Lang;
use crate::notify::settings::{NotifyOptions, NotifySettings};
use crate::spam::ModerationMode;

/// Largest accepted request body (the contract's 128 KiB; `openapi.yaml`).
/// A fixed limit, not an option: a comment is at most 10,000 characters.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// The SQLite file used when no database URL is configured, relative to the
/// working directory (the Docker image sets `/data/marginalia.db`).
pub const DEFAULT_DATABASE_URL: &str = "sqlite://marginalia.db";

/// `marginalia [serve] [OPTIONS]`, `marginalia migrate`, `marginalia token …`,
/// `marginalia secret rotate`, `marginalia import …`, `marginalia export`,
/// `marginalia backup PATH`, `marginalia people export|erase EMAIL`.
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
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start-up; boxing `Config` would buy nothing"
)]
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
    /// Manage the secret that signs one-click links in mail.
    Secret {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Import comments from WordPress (WXR), Disqus (XML), Isso (its SQLite
    /// file) or our own export (JSON Lines). Idempotent; writes nothing when
    /// the file is malformed.
    Import {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The format of FILE.
        #[arg(value_enum)]
        format: ImportFormat,
        /// The export (or, for isso, the database file) to read.
        file: PathBuf,
        /// Do everything, then roll back: the summary says what would be imported.
        #[arg(long)]
        dry_run: bool,
        /// WordPress only: what names a post's thread: the path of its
        /// permalink, of its guid, or `/<slug>/`.
        #[arg(long, value_enum, default_value = "link")]
        uri_from: UriFrom,
    },
    /// Write every comment with every field as JSON Lines (see docs/data.md).
    Export {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Copy a live SQLite database into a new file (consistent, while it
    /// serves). For PostgreSQL use pg_dump.
    Backup {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The new file; it must not exist yet.
        path: PathBuf,
    },
    /// A reader's data: print everything held about an email address, or
    /// erase it (see docs/data.md).
    People {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        action: PeopleAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeopleAction {
    /// Print every comment (every status, every field) and reply-mail
    /// subscription of EMAIL as JSON, as `GET /api/admin/people` does.
    Export {
        /// The reader's address (compared without regard to capitals).
        email: String,
    },
    /// Anonymize every comment of EMAIL (name `Anonymous`; email, website,
    /// IP and user agent removed; text kept), or delete them; its
    /// subscriptions and queued mail go too. `moderated_by` is `cli`.
    Erase {
        /// The reader's address (compared without regard to capitals).
        email: String,
        /// Delete the comments instead of anonymizing them (replies stay).
        #[arg(long)]
        delete_comments: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Replace the link-signing secret: every moderation, subscription and
    /// unsubscribe link issued before stops working.
    Rotate,
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

/// The formats `marginalia import` reads (`import::Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// A WordPress export (WXR 1.0–1.2, Tools → Export).
    Wxr,
    /// A Disqus export (XML, Moderation → Export).
    Disqus,
    /// An Isso database file (SQLite).
    Isso,
    /// Our own export (`marginalia export`).
    Jsonl,
}

/// Which part of a WordPress post names its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum UriFrom {
    /// The path (and query) of the post's permalink, `<link>`.
    #[default]
    Link,
    /// The path (and query) of the post's `<guid>` (`/?p=123`).
    Guid,
    /// `/<post_name>/`, the post's slug.
    Slug,
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

/// Everything `serve` needs. Tests build one by struct update from
/// [`Config::default`] rather than through the command line.
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

    /// Which requests get an access-log line: `errors` (only 5xx answers
    /// and slow requests, at `warn`), or `all` (every other request too, at
    /// `info`). A proxy in front usually logs every request already; the
    /// line costs a cached read a sizeable share of its time (BENCHMARKS.md).
    #[arg(long, env = "MARGINALIA_ACCESS_LOG", value_enum, default_value = "errors")]
    pub access_log: crate::telemetry::AccessLog,

    /// Milliseconds from a request's headers to its answer past which it is
    /// logged as slow (at `warn`), whatever `--access-log` says.
    #[arg(long, env = "MARGINALIA_SLOW_REQUEST_MS", default_value = "1000")]
    pub slow_request_ms: u64,

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

    /// The service's address as readers and moderators reach it
    /// (`https://comments.example.org`); absolute links start with it, and
    /// when it is https the moderation session cookie is `Secure`. Defaults to
    /// `http://` + the bind address (the loopback address, 127.0.0.1 or ::1,
    /// when binding every address).
    #[arg(long, env = "MARGINALIA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// The blog's address; a thread's page is this URL followed by its uri.
    /// Defaults to the first allowed origin, else the public URL.
    #[arg(long, env = "MARGINALIA_SITE_URL")]
    pub site_url: Option<String>,

    /// The blog's name in mail subjects and feed titles. Defaults to the host
    /// of the site URL.
    #[arg(long, env = "MARGINALIA_SITE_NAME")]
    pub site_name: Option<String>,

    /// The SMTP server mail goes through: `smtp://USER:PASS@HOST:587`
    /// (STARTTLS), `smtps://USER:PASS@HOST:465` (TLS) or
    /// `smtp://HOST:PORT?tls=none` (unencrypted, for loopback servers).
    /// Unset: no mail is sent.
    #[arg(long, env = "MARGINALIA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,

    /// The From of every mail, `Name <address>`; required with the SMTP URL.
    #[arg(long, env = "MARGINALIA_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Comma list of moderators' addresses, each told about every comment
    /// that enters the queue; needs the SMTP URL.
    #[arg(
        long,
        env = "MARGINALIA_NOTIFY_EMAILS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub notify_emails: Vec<String>,

    /// Individual moderator mails per hour (at least 1); beyond it, one
    /// digest per hour.
    #[arg(long, env = "MARGINALIA_NOTIFY_PER_HOUR", default_value = "10")]
    pub notify_per_hour: u32,

    /// How long a one-click moderation link works: `30s`, `15m`, `12h` or
    /// `7d`, at most `365d`.
    #[arg(long, env = "MARGINALIA_LINK_TTL", default_value = "7d")]
    pub link_ttl: String,

    /// Comma list of absolute http(s) URLs that receive event POSTs; needs
    /// the webhook secret.
    #[arg(
        long,
        env = "MARGINALIA_WEBHOOK_URLS",
        value_delimiter = ',',
        default_value = "",
        hide_env_values = true
    )]
    pub webhook_urls: Vec<String>,

    /// The key of the webhook signature (`X-Marginalia-Signature`).
    #[arg(long, env = "MARGINALIA_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<SecretString>,

    /// The webhook body: `json`, `slack` or `discord`.
    #[arg(long, env = "MARGINALIA_WEBHOOK_FORMAT", default_value = "json")]
    pub webhook_format: String,

    /// The language of moderator mail and of pages whose request names no
    /// supported language (`Accept-Language`); also of mail to a reader whose
    /// comment did not say. One of en, de, fr, es, pt-BR, pt-PT, it, nl, pl,
    /// tr, ru, ar, he, ja, zh-Hans (a regional tag such as `de-AT` picks its
    /// language); anything else stops start-up.
    #[arg(long, env = "MARGINALIA_LANG", default_value = "en", value_parser = parse_lang)]
    pub lang: Lang,

    /// Days the IP address and user agent of a comment are kept; after that
    /// the retention job removes them from it. 0 keeps them.
    #[arg(long, env = "MARGINALIA_KEEP_IP_DAYS", default_value = "30")]
    pub keep_ip_days: u32,

    /// Days after their moderation that spam and rejected comments are
    /// deleted by the retention job. 0 keeps them.
    #[arg(long, env = "MARGINALIA_PURGE_DAYS", default_value = "30")]
    pub purge_days: u32,
    /// Days after its first comment a thread closes to new comments (its
    /// comments stay shown), unless a moderator opened it; 0: never.
    #[arg(long, env = "MARGINALIA_CLOSE_AFTER_DAYS", default_value = "0")]
    pub close_after_days: u32,

    /// Which comments wait for a moderator: `all` (every one), or `known`
    /// (one whose name and email match an approved comment is published at
    /// once unless a rule holds it). The default of the moderation rules:
    /// once a moderator stores rules (/admin, PUT /api/admin/rules), the
    /// stored mode applies instead.
    #[arg(long, env = "MARGINALIA_MODERATION", value_enum, default_value = "all")]
    pub moderation: ModerationMode,

    /// Seconds a reader must have had the form on screen (from its signed
    /// form token) for a comment not to be held as `too_fast`; decimals
    /// allowed (`1.5`), `0` turns the check off. Comments without a token
    /// are not held for that.
    #[arg(long, env = "MARGINALIA_MIN_FORM_SECONDS", default_value = "3", value_parser = parse_form_seconds)]
    pub min_form_seconds: Duration,

    /// An Akismet API key: each new comment is then checked with Akismet
    /// after it is stored (its text, the reader's name, email, website, IP
    /// and user agent go to Akismet; see the README). Unset: no Akismet.
    #[arg(long, env = "MARGINALIA_AKISMET_KEY", hide_env_values = true)]
    pub akismet_key: Option<SecretString>,

    /// Akismet's API base (tests point it at a local fake).
    #[arg(
        long,
        env = "MARGINALIA_AKISMET_URL",
        default_value = "https://rest.akismet.com/1.1"
    )]
    pub akismet_url: String,

    /// Seconds one Akismet call may take before it counts as failed (it is
    /// tried three times, then the comment stays in the queue).
    #[arg(long, env = "MARGINALIA_AKISMET_TIMEOUT", default_value = "5", value_parser = parse_seconds)]
    pub akismet_timeout: Duration,

    /// The learning spam filter's probability at or above which a new
    /// comment goes to spam (reason `filter:0.997`), once the filter has
    /// learned 50 moderator decisions of each kind; above 0.5 and at most 1.
    /// `1` turns that off (scores are still computed and shown).
    #[arg(long, env = "MARGINALIA_FILTER_SPAM_AT", default_value = "0.99", value_parser = parse_spam_at)]
    pub filter_spam_at: f64,
}

impl Config {
    /// The notification settings, every value and combination checked; the
    /// error names the variable at fault (and never repeats a secret).
    pub fn notify(&self) -> anyhow::Result<NotifySettings> {
        NotifySettings::resolve(&NotifyOptions {
            smtp_url: self.smtp_url.as_ref(),
            mail_from: self.mail_from.as_deref(),
            notify_emails: &self.notify_emails,
            notify_per_hour: self.notify_per_hour,
            link_ttl: &self.link_ttl,
            webhook_urls: &self.webhook_urls,
            webhook_secret: self.webhook_secret.as_ref(),
            webhook_format: &self.webhook_format,
        })
    }

    /// The Akismet settings, `None` without a key; the URL and timeout
    /// checked (the error names the variable, never the key).
    pub fn akismet(&self) -> anyhow::Result<Option<AkismetSettings>> {
        let Some(key) = &self.akismet_key else {
            return Ok(None);
        };
        if secrecy::ExposeSecret::expose_secret(key).trim().is_empty() {
            anyhow::bail!("MARGINALIA_AKISMET_KEY is empty");
        }
        let url = Url::parse(self.akismet_url.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .with_context(|| {
                format!(
                    "MARGINALIA_AKISMET_URL `{}` is not an http(s) URL",
                    self.akismet_url
                )
            })?;
        if self.akismet_timeout.is_zero() || self.akismet_timeout > Duration::from_secs(30) {
            anyhow::bail!("MARGINALIA_AKISMET_TIMEOUT must be 1 to 30 seconds");
        }
        Ok(Some(AkismetSettings {
            key: key.clone(),
            url,
            timeout: self.akismet_timeout,
        }))
    }

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

    /// The public URL, site URL and site name, validated, with their defaults
    /// filled in. `bound` is the address the listener actually has (its real
    /// port when the configuration asked for port 0); the default public URL
    /// is built from it.
    pub fn site(&self, bound: SocketAddr) -> anyhow::Result<Site> {
        let public_url = match given(&self.public_url) {
            Some(text) => parse_site_url("MARGINALIA_PUBLIC_URL", text)?,
            None => default_public_url(bound)?,
        };
        let site_url = match given(&self.site_url) {
            Some(text) => parse_site_url("MARGINALIA_SITE_URL", text)?,
            None => match self.origins().first() {
                Some(origin) => parse_site_url("MARGINALIA_ALLOWED_ORIGINS (first entry)", origin)?,
                None => public_url.clone(),
            },
        };
        let name = match given(&self.site_name) {
            Some(name) => parse_site_name(name)?,
            // An http(s) URL always has a host: `parse_site_url` checked it.
            None => site_url.host_str().unwrap_or_default().to_owned(),
        };
        Ok(Site {
            public_url,
            site_url,
            name,
        })
    }
}

/// Where the service and the blog live, resolved once at start-up from
/// `PUBLIC_URL`, `SITE_URL` and `SITE_NAME`.
///
/// Both URLs are absolute http(s) URLs without query, fragment or user
/// information. A trailing slash is not significant: `https://c.example/x/`
/// and `https://c.example/x` are the same setting, stored without it (a bare
/// host keeps the `/` every URL has), and links are built by appending an
/// absolute path (`/admin`, a thread's uri) to the URL without its slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The service's own address; its origin is "the service itself" for the
    /// same-origin rules (CORS, form redirects, the moderator API).
    pub public_url: Url,
    /// The blog's address.
    pub site_url: Url,
    /// The blog's name.
    pub name: String,
}

/// Akismet's key, API base and call timeout, from `MARGINALIA_AKISMET_*`.
#[derive(Debug, Clone)]
pub struct AkismetSettings {
    /// Never logged: `SecretString` prints as redacted.
    pub key: SecretString,
    /// The API base, `https://rest.akismet.com/1.1` unless told otherwise.
    pub url: Url,
    /// How long one call may take.
    pub timeout: Duration,
}

/// Longest accepted `SITE_NAME`, in characters.
pub const MAX_SITE_NAME_CHARS: usize = 100;

impl Site {
    /// True when `origin` (an `Origin` header value, or a URL's origin
    /// serialized) is the public URL's origin: same scheme, host and port.
    /// This is the one definition of "a page of the service itself"; the
    /// `Host` header never counts.
    pub fn is_public_origin(&self, origin: &str) -> bool {
        Url::parse(origin).is_ok_and(|url| url.origin() == self.public_url.origin())
    }

    /// The public URL's origin as browsers write it in `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// An absolute link to `path` (which starts with `/`) on the service.
    pub fn public_link(&self, path: &str) -> String {
        join(&self.public_url, path)
    }

    /// The blog page of a thread: the site URL followed by the thread's uri.
    pub fn page_url(&self, uri: &str) -> String {
        join(&self.site_url, uri)
    }

    /// True when the service is reached over https, so cookies it sets may
    /// be marked `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

fn join(base: &Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// An option's value unless it is absent or blank (an empty environment
/// variable means "not set").
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

/// `http://` + the bound address; an unspecified address (every interface)
/// is no address a browser can use, so its loopback stands in for it.
fn default_public_url(bound: SocketAddr) -> anyhow::Result<Url> {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(ip, bound.port());
    Url::parse(&format!("http://{address}")).with_context(|| format!("no default public URL for {bound}"))
}

/// An absolute http(s) URL with a host, without query, fragment or user
/// information; a trailing slash is dropped (see [`Site`]).
fn parse_site_url(option: &str, text: &str) -> anyhow::Result<Url> {
    let expected = "an absolute http or https URL such as https://comments.example.org";
    let mut url =
        Url::parse(text).map_err(|error| anyhow::anyhow!("{option} `{text}` is not {expected} ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("{option} `{text}` is not {expected}");
    }
    if url.query().is_some() || url.fragment().is_some() {
        anyhow::bail!("{option} `{text}` must not have a query (?…) or a fragment (#…)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        anyhow::bail!("{option} `{text}` must not contain a user name or password");
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

fn parse_site_name(name: &str) -> anyhow::Result<String> {
    if name.chars().count() > MAX_SITE_NAME_CHARS {
        anyhow::bail!("MARGINALIA_SITE_NAME must be at most {MAX_SITE_NAME_CHARS} characters");
    }
    if name.chars().any(char::is_control) {
        anyhow::bail!("MARGINALIA_SITE_NAME must not contain control characters");
    }
    Ok(name.to_owned())
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

/// Seconds with decimals, 0 to 3600.
fn parse_form_seconds(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err("must be between 0 and 3600 seconds".into());
    }
    Ok(Duration::from_secs_f64(seconds))
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

/// A supported language; the message names the variable, as start-up's
/// other refusals do.
fn parse_lang(value: &str) -> Result<Lang, String> {
    value
        .parse::<Lang>()
        .map_err(|error| format!("MARGINALIA_LANG: {error}"))
}

/// `MARGINALIA_FILTER_SPAM_AT`: a probability above 0.5 (a lower one would
/// call spam what the filter finds more likely ham) and at most 1 (off).
fn parse_spam_at(value: &str) -> Result<f64, String> {
    let threshold: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("MARGINALIA_FILTER_SPAM_AT: `{value}` is not a number"))?;
    if !(threshold > 0.5 && threshold <= 1.0) {
        return Err(format!(
            "MARGINALIA_FILTER_SPAM_AT: must be above 0.5 and at most 1 (1 turns it off), not {value}"
        ));
    }
    Ok(threshold)
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

    fn site_of(args: &[&str], bound: &str) -> anyhow::Result<Site> {
        let cli = Cli::try_parse_from(std::iter::once("marginalia").chain(args.iter().copied())).unwrap();
        cli.serve.site(bound.parse().unwrap())
    }

    #[test]
    fn site_defaults_follow_the_bind_address_and_the_allowed_origins() {
        let site = site_of(&[], "127.0.0.1:3000").unwrap();
        assert_eq!(site.public_url.as_str(), "http://127.0.0.1:3000/");
        assert_eq!(site.site_url, site.public_url);
        assert_eq!(site.name, "127.0.0.1");
        assert!(!site.is_https());

        // Every interface is no address a browser can use: loopback stands in.
        let site = site_of(&[], "0.0.0.0:8080").unwrap();
        assert_eq!(site.public_origin(), "http://127.0.0.1:8080");
        let site = site_of(&[], "[::]:8080").unwrap();
        assert_eq!(site.public_origin(), "http://[::1]:8080");

        let site = site_of(
            &["--allowed-origins", "https://blog.example,https://other.example"],
            "127.0.0.1:3000",
        )
        .unwrap();
        assert_eq!(site.site_url.as_str(), "https://blog.example/");
        assert_eq!(site.name, "blog.example");
        assert_eq!(site.public_origin(), "http://127.0.0.1:3000");
    }

    #[test]
    fn explicit_site_options_win_and_lose_their_trailing_slash() {
        let site = site_of(
            &[
                "--public-url",
                "https://Comments.Example/sub/",
                "--site-url",
                "https://blog.example",
                "--site-name",
                "  Ada's blog ",
                "--allowed-origins",
                "https://other.example",
            ],
            "0.0.0.0:3000",
        )
        .unwrap();
        assert_eq!(site.public_url.as_str(), "https://comments.example/sub");
        assert_eq!(site.public_link("/admin"), "https://comments.example/sub/admin");
        assert_eq!(site.page_url("/posts/1/"), "https://blog.example/posts/1/");
        assert_eq!(site.name, "Ada's blog");
        assert!(site.is_https());
        // An empty value (an empty environment variable) means "not set".
        let site = site_of(&["--public-url", "", "--site-name", ""], "127.0.0.1:3000").unwrap();
        assert_eq!(site.public_origin(), "http://127.0.0.1:3000");
        assert_eq!(site.name, "127.0.0.1");
    }

    #[test]
    fn bad_site_urls_are_refused_with_the_option_named() {
        for (bad, says) in [
            ("comments.example", "not an absolute http or https URL"),
            ("/comments", "not an absolute http or https URL"),
            ("ftp://comments.example", "not an absolute http or https URL"),
            ("https://comments.example/?x=1", "must not have a query"),
            ("https://comments.example/#top", "must not have a query"),
            ("https://user:pw@comments.example", "user name or password"),
        ] {
            let error = site_of(&["--public-url", bad], "127.0.0.1:3000")
                .unwrap_err()
                .to_string();
            assert!(error.contains("MARGINALIA_PUBLIC_URL"), "{bad}: {error}");
            assert!(error.contains(says), "{bad}: {error}");
            let error = site_of(&["--site-url", bad], "127.0.0.1:3000")
                .unwrap_err()
                .to_string();
            assert!(error.contains("MARGINALIA_SITE_URL"), "{bad}: {error}");
        }
        let error = site_of(&["--site-name", "a\u{7}b"], "127.0.0.1:3000").unwrap_err();
        assert!(error.to_string().contains("control characters"), "{error}");
        let long = "x".repeat(MAX_SITE_NAME_CHARS + 1);
        assert!(site_of(&["--site-name", &long], "127.0.0.1:3000").is_err());
    }

    #[test]
    fn the_public_origin_is_compared_by_scheme_host_and_port() {
        let site = site_of(&["--public-url", "https://comments.example"], "127.0.0.1:3000").unwrap();
        assert!(site.is_public_origin("https://comments.example"));
        assert!(site.is_public_origin("https://COMMENTS.example:443"));
        assert!(!site.is_public_origin("http://comments.example"));
        assert!(!site.is_public_origin("https://comments.example:8443"));
        assert!(!site.is_public_origin("https://comments.example.evil.example"));
        assert!(!site.is_public_origin("null"));
        assert!(!site.is_public_origin(""));
    }

    #[test]
    fn site_options_are_listed_by_help() {
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for env in [
            "MARGINALIA_PUBLIC_URL",
            "MARGINALIA_SITE_URL",
            "MARGINALIA_SITE_NAME",
            "MARGINALIA_SMTP_URL",
            "MARGINALIA_MAIL_FROM",
            "MARGINALIA_NOTIFY_EMAILS",
            "MARGINALIA_NOTIFY_PER_HOUR",
            "MARGINALIA_LINK_TTL",
            "MARGINALIA_WEBHOOK_URLS",
            "MARGINALIA_WEBHOOK_SECRET",
            "MARGINALIA_WEBHOOK_FORMAT",
            "MARGINALIA_LANG",
            "MARGINALIA_KEEP_IP_DAYS",
            "MARGINALIA_PURGE_DAYS",
        ] {
            assert!(help.contains(env), "{env} missing from --help");
        }
    }

    #[test]
    fn notification_flags_reach_the_settings() {
        let cli = Cli::try_parse_from([
            "marginalia",
            "--smtp-url",
            "smtp://127.0.0.1:2525?tls=none",
            "--mail-from",
            "Blog <blog@example.org>",
            "--notify-emails",
            "a@example.org,b@example.org",
            "--notify-per-hour",
            "3",
            "--link-ttl",
            "2h",
            "--webhook-urls",
            "https://hooks.example/a",
            "--webhook-secret",
            "key",
            "--webhook-format",
            "discord",
        ])
        .unwrap();
        let settings = cli.serve.notify().unwrap();
        assert_eq!(settings.mail.unwrap().port, 2525);
        assert_eq!(settings.moderator_emails.len(), 2);
        assert_eq!(settings.per_hour.get(), 3);
        assert_eq!(settings.link_ttl, Duration::from_secs(7200));
        assert_eq!(
            settings.webhooks.unwrap().format,
            crate::notify::webhook::WebhookFormat::Discord
        );
        assert!(Config::default().notify().unwrap().mail.is_none());
    }

    #[test]
    fn the_language_defaults_to_english_and_must_be_supported() {
        assert_eq!(Config::default().lang, Lang::En);
        let cli = Cli::try_parse_from(["marginalia", "--lang", "pt-PT"]).unwrap();
        assert_eq!(cli.serve.lang, Lang::PtPt);
        let cli = Cli::try_parse_from(["marginalia", "--lang", "de-AT"]).unwrap();
        assert_eq!(cli.serve.lang, Lang::De);
        let error = Cli::try_parse_from(["marginalia", "--lang", "xx"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("MARGINALIA_LANG") && error.contains("zh-Hans"),
            "{error}"
        );
    }

    #[test]
    fn moderation_and_form_time_have_defaults_flags_and_bounds() {
        let defaults = Config::default();
        assert_eq!(defaults.moderation, ModerationMode::All);
        assert_eq!(defaults.min_form_seconds, Duration::from_secs(3));
        let cli = Cli::try_parse_from(["marginalia", "--moderation", "known", "--min-form-seconds", "0.5"])
            .unwrap();
        assert_eq!(cli.serve.moderation, ModerationMode::Known);
        assert_eq!(cli.serve.min_form_seconds, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["marginalia", "--moderation", "some"]).is_err());
        assert!(Cli::try_parse_from(["marginalia", "--min-form-seconds", "-1"]).is_err());
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        assert!(help.contains("MARGINALIA_MODERATION") && help.contains("MARGINALIA_MIN_FORM_SECONDS"));
    }

    #[test]
    fn the_filter_threshold_defaults_to_0_99_and_must_be_above_one_half_and_at_most_one() {
        assert_eq!(Config::default().filter_spam_at, 0.99);
        for (given, expected) in [
            ("0.995", 0.995),
            ("1", 1.0),
            (" 0.75 ", 0.75),
            ("0.5000001", 0.5000001),
        ] {
            assert_eq!(parse_spam_at(given), Ok(expected), "{given}");
        }
        for refused in ["0.5", "0", "-1", "1.01", "2", "NaN", "inf", "", "high"] {
            let error = parse_spam_at(refused).unwrap_err();
            assert!(error.contains("MARGINALIA_FILTER_SPAM_AT"), "{refused}: {error}");
        }
        let cli = Cli::try_parse_from(["marginalia", "--filter-spam-at", "1"]).unwrap();
        assert_eq!(cli.serve.filter_spam_at, 1.0);
        let refused = Cli::try_parse_from(["marginalia", "--filter-spam-at", "0.4"]).unwrap_err();
        assert!(refused.to_string().contains("at most 1"), "{refused}");
        let help = <Cli as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        assert!(help.contains("MARGINALIA_FILTER_SPAM_AT"));
    }

    #[test]
    fn a_zero_rate_limit_is_refused() {
        assert!(Cli::try_parse_from(["marginalia", "--rate-limit-per-minute", "0"]).is_err());
    }
}
