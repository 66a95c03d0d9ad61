//! Building the application separately from running it: [`App::build`] binds
//! the listener itself (port 0 works, so every test gets a private instance),
//! opens and migrates the store and assembles the routes; [`App::run`] serves
//! until the shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::auth::{self, Authenticator};
use crate::config::{Config, Site};
use crate::metrics::Metrics;
use crate::rate_limit::{ClientResolver, SubmissionLimiter};
use crate::routes;
use crate::server::{self, ServerLimits};
use crate::store::{InsertBatcher, Store, StoreChange, TokenInsertError};
use crate::thread_cache::ThreadCache;

/// How often the rate limiter and the auth lock-out forget idle clients.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

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
}

/// A built, not yet running, instance.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    state: Arc<AppState>,
    limits: ServerLimits,
    first_token: Option<SecretString>,
}

impl App {
    /// Binds, connects, migrates, and creates the first moderator token when
    /// there is none at all.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let allowed_origins = validate_origins(&config.origins())?;
        // Refused before anything is opened; resolved again once the real port is known.
        config.site(config.bind)?;
        if let Some(token) = &config.admin_token
            && token.expose_secret().chars().count() < auth::MIN_TOKEN_CHARS
        {
            anyhow::bail!(
                "MARGINALIA_ADMIN_TOKEN must be at least {} characters",
                auth::MIN_TOKEN_CHARS
            );
        }

        let database_url = config.database.url();
        let store = Store::connect(&database_url)
            .await
            .with_context(|| format!("opening {}", Store::describe(&database_url)))?;
        store.migrate().await?;

        let first_token = if config.admin_token.is_none() && store.list_tokens().await?.is_empty() {
            match auth::create_token(&store, auth::FIRST_TOKEN_NAME).await {
                Ok(token) => Some(token),
                // Another instance starting on the same database created it first.
                Err(TokenInsertError::NameTaken(_)) => None,
                Err(TokenInsertError::Store(error)) => {
                    return Err(error).context("creating the first moderator token");
                }
            }
        } else {
            None
        };

        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let address = listener.local_addr()?;

        // SQLite has one writer and one instance per file. On PostgreSQL
        // other instances may change threads, so its cache waits until the
        // change listener is up.
        let (writers, cache_ready_at_once) = match &store {
            Store::Sqlite(_) => (1, true),
            // Two: one commits while the other gathers; more split the queue
            // into batches too small to share a commit.
            Store::Postgres(_) => (2, false),
        };
        let state = Arc::new(AppState {
            threads: ThreadCache::new(config.thread_cache_bytes, cache_ready_at_once),
            auth: Authenticator::new(store.clone(), config.admin_token.as_ref()),
            inserts: InsertBatcher::spawn(store.clone(), writers),
            store,
            submissions: SubmissionLimiter::new(config.rate_limit_per_minute, config.rate_limit_burst),
            clients: ClientResolver::new(config.trusted_networks()),
            metrics: Metrics::default(),
            allowed_origins,
            site: config.site(address)?,
        });
        let limits = ServerLimits {
            max_connections: config.max_connections.get() as usize,
            header_read_timeout: config.header_read_timeout,
            request_timeout: config.request_timeout,
            shutdown_grace: config.shutdown_grace,
        };
        Ok(Self {
            listener,
            address,
            state,
            limits,
            first_token,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn backend_name(&self) -> &'static str {
        self.state.store.backend_name()
    }

    /// The token created because none existed; `Some` only on that first start.
    /// The caller shows it once; it is never logged.
    pub fn take_first_token(&mut self) -> Option<SecretString> {
        self.first_token.take()
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, and
    /// closes the database pool.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let pruner = tokio::spawn(prune_periodically(self.state.clone()));
        let listener = tokio::spawn(follow_other_instances(self.state.clone()));
        let routes = routes::routes(self.state.clone());
        server::serve(self.listener, routes, self.limits, shutdown).await;
        pruner.abort();
        listener.abort();
        self.state.store.close().await;
    }
}

/// Keeps the per-client state bounded however many addresses come by.
async fn prune_periodically(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        interval.tick().await;
        state.submissions.prune();
        state.auth.prune();
    }
}

/// Keeps the thread cache true to changes made by other instances (PostgreSQL
/// only; a SQLite file has one instance).
async fn follow_other_instances(state: Arc<AppState>) {
    let Store::Postgres(store) = &state.store else {
        return;
    };
    store
        .listen_for_changes(|change| match change {
            StoreChange::Thread(uri) => state.threads.invalidate(&uri),
            StoreChange::Listening => {
                tracing::debug!("listening for changes by other instances");
                state.threads.set_enabled(true);
            }
            StoreChange::Lost => {
                tracing::warn!("change listener lost; thread cache off until it reconnects");
                state.threads.set_enabled(false);
            }
        })
        .await;
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
