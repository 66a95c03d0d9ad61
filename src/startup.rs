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

use crate::akismet;
use crate::auth;
use crate::comments;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox;
use crate::retention::{self, RetentionPolicy};
use crate::routes;
use crate::server::{self, ServerLimits};
use crate::spam::ModerationMode;
use crate::spam::known_authors;
use crate::state::{AppState, FILTER_REFRESH};
use crate::store::{Store, StoreChange, TokenInsertError};
use crate::tasks::{CancellationToken, Supervisor};

/// How often the rate limiter and the auth lock-out forget idle clients.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// How long background tasks get to finish their work at shutdown (the batch
/// writers commit what is queued), after in-flight requests have been served.
const TASK_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// A built, not yet running, instance.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    state: Arc<AppState>,
    tasks: Supervisor,
    limits: ServerLimits,
    first_token: Option<SecretString>,
}

impl App {
    /// Binds, connects, migrates, and creates the first moderator token when
    /// there is none at all.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        // Refused before anything is opened or created.
        AppState::check_config(config)?;
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
                Err(error @ TokenInsertError::Reserved(_)) => return Err(error.into()),
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

        let metrics = Metrics::default();
        let mut tasks = Supervisor::new(metrics.task_exits());
        let state = Arc::new(AppState::build(config, address, store, metrics, &mut tasks).await?);
        outbox::start(state.clone(), &mut tasks)?;
        retention::start(state.clone(), RetentionPolicy::from_config(config), &mut tasks);
        akismet::start(state.clone(), &mut tasks).await?;
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
            tasks,
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

    /// The resolved public URL, blog URL and name (defaults filled in).
    pub fn site(&self) -> &crate::config::Site {
        &self.state.site
    }

    /// The key signing one-click links, as this instance read it at start-up.
    pub fn link_secret(&self) -> &crate::notify::links::LinkSecret {
        &self.state.link_secret
    }

    /// The token created because none existed; `Some` only on that first start.
    /// The caller shows it once; it is never logged.
    pub fn take_first_token(&mut self) -> Option<SecretString> {
        self.first_token.take()
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish,
    /// stops the background tasks (the batch writers commit what is queued),
    /// and closes the database pool.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            state,
            mut tasks,
            limits,
            ..
        } = self;
        let pruned = state.clone();
        tasks.spawn_until_cancelled("client pruner", prune_periodically(pruned));
        let filtering = state.clone();
        tasks.spawn_until_cancelled("filter refresher", refresh_filter_periodically(filtering));
        let knowing = state.clone();
        tasks.spawn_until_cancelled("known authors loader", load_known_authors_periodically(knowing));
        if let Store::Postgres(_) = state.store {
            let following = state.clone();
            tasks.spawn("change listener", |stop| follow_other_instances(following, stop));
        }
        server::serve(listener, routes::routes(state.clone()), limits, shutdown).await;
        let aborted = tasks.shutdown(TASK_SHUTDOWN_DEADLINE).await;
        if aborted > 0 {
            tracing::warn!(aborted, "some background tasks were aborted at shutdown");
        }
        state.store.close().await;
    }
}

/// Keeps the per-client state bounded however many addresses come by.
async fn prune_periodically(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        interval.tick().await;
        state.submissions.prune().await;
        state.auth.prune();
    }
}

/// Keeps this instance's copy of the learning filter's model true to what
/// other instances' moderators taught it (and reloads it after a change of
/// this instance's that could not be applied in place): every
/// [`FILTER_REFRESH`], one indexed row is read, and the model only when its
/// version differs. Off the request path, so a submission never waits for it.
async fn refresh_filter_periodically(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(FILTER_REFRESH);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = state.store.classifier_model(&state.filter).await {
            tracing::warn!(error = %error, "could not refresh the learning spam filter; trying again later");
        }
    }
}

/// Keeps this instance's set of approved authors (`spam::known_authors`)
/// complete while the mode is `known`: loads it at once (the server is
/// already serving; until then every submission asks the database), then
/// every [`known_authors::REFRESH`], so approvals made by other instances
/// and CLI imports arrive. The mode is looked at every [`FILTER_REFRESH`]
/// (from memory), so a switch to `known` starts the load within that delay.
async fn load_known_authors_periodically(state: Arc<AppState>) {
    let mut interval = tokio::time::interval(FILTER_REFRESH);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut loaded_at: Option<tokio::time::Instant> = None;
    loop {
        interval.tick().await;
        if loaded_at.is_some_and(|at| at.elapsed() < known_authors::REFRESH) {
            continue;
        }
        match comments::moderation_rules(&state).await {
            Ok(rules) if rules.moderation == ModerationMode::Known => {}
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(error = %error, "could not read the moderation rules; trying again later");
                continue;
            }
        }
        match state.store.approved_authors().await {
            Ok(authors) => {
                let pairs = authors
                    .iter()
                    .map(|(name, email)| (name.as_str(), email.as_str()));
                state.known_authors.load(pairs);
                let keys = state.known_authors.len();
                state.metrics.known_authors_loaded(keys);
                tracing::info!(authors = authors.len(), keys, "known authors loaded");
                loaded_at = Some(tokio::time::Instant::now());
            }
            Err(error) => {
                tracing::warn!(error = %error, "could not load the known authors; trying again later");
            }
        }
    }
}

/// Keeps the thread cache true to changes made by other instances (PostgreSQL
/// only; a SQLite file has one instance). Runs until `stop` is cancelled.
async fn follow_other_instances(state: Arc<AppState>, stop: CancellationToken) {
    let Store::Postgres(store) = &state.store else {
        return;
    };
    let listening = store.listen_for_changes(|change| match change {
        StoreChange::Thread(uri) => state.threads.invalidate(&uri),
        StoreChange::Rules => state.rules.invalidate(),
        StoreChange::Listening => {
            tracing::debug!("listening for changes by other instances");
            state.threads.set_enabled(true);
            state.rules.set_enabled(true);
        }
        StoreChange::Lost => {
            tracing::warn!("change listener lost; thread cache off until it reconnects");
            state.threads.set_enabled(false);
            state.rules.set_enabled(false);
        }
    });
    tokio::select! {
        () = stop.cancelled() => {}
        () = listening => {}
    }
}
