//! What every request handler and use case shares, and how it is assembled
//! from the configuration. Its own module so that `startup` (which runs the
//! app) and `routes` (which serve it) both depend on it without depending on
//! each other.

use std::net::SocketAddr;

use anyhow::Context;

use crate::auth::Authenticator;
use crate::classifier::ModelCache;
use crate::config::{AkismetSettings, Config, Site};
use crate::i18n::Lang;
use crate::metrics::Metrics;
use crate::notify::NotifySettings;
use crate::notify::links::LinkSecret;
use crate::rate_limit::{ClientResolver, SubmissionLimiter};
use crate::spam::RulesCache;
use crate::spam::form_token::FormTokenKey;
use crate::spam::known_authors::KnownAuthors;
use crate::store::{InsertBatcher, Store, Writing};
use crate::tasks::Supervisor;
use crate::thread_cache::ThreadCache;

/// What every request handler shares.
pub struct AppState {
    pub store: Store,
    /// Submissions go through here: many commit as one.
    pub inserts: InsertBatcher,
    pub auth: Authenticator,
    pub submissions: SubmissionLimiter,
    pub clients: ClientResolver,
    pub metrics: Metrics,
    pub threads: ThreadCache,
    /// CORS origins of the public API; empty means any.
    pub allowed_origins: Vec<String>,
    /// The service's public URL, the blog's URL and name.
    pub site: Site,
    /// `MARGINALIA_LANG`: moderator mail, and pages whose request names no
    /// supported language.
    pub lang: Lang,
    /// Who is told about what, by mail and webhook; checked at start-up.
    pub notify: NotifySettings,
    /// The key of one-click links as it was at start-up (made on the first
    /// start, so it exists before any mail is composed). Signing (`outbox`)
    /// and checking (`links`) read the stored key at each use instead, so a
    /// `marginalia secret rotate` applies at once.
    pub link_secret: LinkSecret,
    /// `MARGINALIA_CLOSE_AFTER_DAYS` as a duration; `None` when threads never
    /// close by age.
    pub close_after: Option<time::Duration>,
    /// The moderation rules as last read (see `spam::RulesCache`).
    pub rules: RulesCache,
    /// Signs and checks the form tokens (derived from the link secret read
    /// at start-up).
    pub form_tokens: FormTokenKey,
    /// `MARGINALIA_MIN_FORM_SECONDS`.
    pub min_form_age: std::time::Duration,
    /// Akismet's key and address; `None`: no Akismet (`crate::akismet`).
    pub akismet: Option<AkismetSettings>,
    /// The learning spam filter's model as this instance last read it.
    /// Submissions read it without asking the store; this instance's own
    /// moderations update it at once, and a background task (`startup`)
    /// reloads it every [`FILTER_REFRESH`] when another instance changed it.
    pub filter: ModelCache,
    /// `MARGINALIA_FILTER_SPAM_AT`.
    pub filter_spam_at: f64,
    /// `MARGINALIA_ACCESS_LOG` and `MARGINALIA_SLOW_REQUEST_MS`.
    pub access_log: crate::telemetry::AccessLogSettings,
    /// The approved authors as this instance knows them (`known` mode's
    /// negative filter, see `spam::known_authors`): loaded in the background
    /// by `startup`, added to by this instance's approvals.
    pub known_authors: KnownAuthors,
}

/// How often an instance asks whether the filter's stored model changed
/// (one indexed row): what another instance's moderators taught it reaches
/// this one's submissions within that delay.
pub const FILTER_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    /// Refuses a configuration the state could not be built from, before
    /// the caller opens the database or binds anything.
    pub fn check_config(config: &Config) -> anyhow::Result<()> {
        validate_origins(&config.origins())?;
        config.site(config.bind)?;
        config.notify()?;
        config.akismet()?;
        Ok(())
    }

    /// Assembles the state over an opened, migrated store; `address` is the
    /// one actually bound (the default public URL names it). `metrics` is made
    /// by the caller because the supervisor reports into it before the state
    /// exists; the batch writers are started under `supervisor`. The
    /// link-signing key is read from the store (made on the first start).
    pub async fn build(
        config: &Config,
        address: SocketAddr,
        store: Store,
        metrics: Metrics,
        supervisor: &mut Supervisor,
    ) -> anyhow::Result<Self> {
        let allowed_origins = validate_origins(&config.origins())?;
        let notify = config.notify()?;
        let akismet = config.akismet()?;
        let link_secret = store
            .link_secret()
            .await
            .context("reading the link-signing secret")?;
        let filter = ModelCache::new(FILTER_REFRESH);
        store
            .classifier_model(&filter)
            .await
            .context("loading the learning spam filter")?;
        // SQLite has one writer and one instance per file. On PostgreSQL
        // other instances may change threads, so its cache waits until the
        // change listener is up.
        let (writers, cache_ready_at_once) = match &store {
            Store::Sqlite(_) => (1, true),
            // Two: one commits while the other gathers; more split the queue
            // into batches too small to share a commit.
            Store::Postgres(_) => (2, false),
        };
        Ok(Self {
            rules: RulesCache::new(config.moderation, cache_ready_at_once),
            form_tokens: FormTokenKey::from_secret(&link_secret),
            min_form_age: config.min_form_seconds,
            threads: ThreadCache::new(config.thread_cache_bytes, cache_ready_at_once),
            auth: Authenticator::new(store.clone(), config.admin_token.as_ref()),
            inserts: InsertBatcher::start(
                store.clone(),
                writers,
                Writing {
                    record_events: notify.is_enabled(),
                    check_akismet: akismet.is_some(),
                },
                supervisor,
            ),
            submissions: SubmissionLimiter::for_store(
                config.rate_limit_per_minute,
                config.rate_limit_burst,
                &store,
            ),
            store,
            clients: ClientResolver::new(config.trusted_networks()),
            metrics,
            allowed_origins,
            site: config.site(address)?,
            lang: config.lang,
            notify,
            link_secret,
            close_after: (config.close_after_days > 0)
                .then(|| time::Duration::days(i64::from(config.close_after_days))),
            akismet,
            filter,
            filter_spam_at: config.filter_spam_at,
            access_log: crate::telemetry::AccessLogSettings {
                mode: config.access_log,
                slow: std::time::Duration::from_millis(config.slow_request_ms),
            },
            known_authors: KnownAuthors::new(),
        })
    }
}

/// Each allowed origin must be exactly `scheme://host[:port]`, as browsers send it.
fn validate_origins(origins: &[String]) -> anyhow::Result<Vec<String>> {
    origins
        .iter()
        .map(|origin| {
            let parsed =
                url::Url::parse(origin).with_context(|| format!("allowed origin `{origin}` is not a URL"))?;
            let serialized = parsed.origin().ascii_serialization();
            if serialized != *origin {
                anyhow::bail!(
                    "allowed origin `{origin}` must look like `{serialized}` (scheme, host and port only)"
                );
            }
            Ok(serialized)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::validate_origins;

    #[test]
    fn origins_must_be_scheme_host_and_port_only() {
        assert!(validate_origins(&["https://blog.example.com".into()]).is_ok());
        assert!(validate_origins(&["http://localhost:8080".into()]).is_ok());
        assert!(validate_origins(&["https://blog.example.com/posts".into()]).is_err());
        assert!(validate_origins(&["blog.example.com".into()]).is_err());
    }
}
