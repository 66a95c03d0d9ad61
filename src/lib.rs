//! marginalia: a moderated comment service for blogs.
//!
//! A reader submits a comment from the widget under a blog post; it waits in a
//! moderation queue until a moderator approves it; only then is it published.
//! The reader's email address is kept for the moderators and never published.
//!
//! # Layout
//!
//! - [`config`]: the command line and environment (`clap`), one `Config` for `serve`.
//! - [`startup`]: [`startup::App::build`] binds the listener, opens and migrates the
//!   store, bootstraps the first moderator token; [`startup::App::run`] serves,
//!   then stops the background tasks and closes the store.
//! - [`state`]: [`state::AppState`], what handlers and use cases share, and its assembly.
//! - [`tasks`]: the supervisor of background tasks (batch writers, pruner, change
//!   listener): one cancellation token, early exits logged and counted, drained at shutdown.
//! - [`comments`]: the use cases (submit, moderate, delete) that routes, the CLI
//!   and importers call; the order of steps lives here, not in handlers.
//! - [`threads`]: the use cases on whole threads: closed or not (by a
//!   moderator, an import, or `MARGINALIA_CLOSE_AFTER_DAYS`), close and open,
//!   rename and merge.
//! - [`links`]: the use cases of one-click links (moderate a comment, confirm a
//!   subscription, unsubscribe): the token checked against the key stored now,
//!   its purpose, then one store call that also makes the link single use.
//! - [`server`]: the accept loop (connection cap, header-read timeout, graceful
//!   shutdown) that hands every request to the warp filters with its peer address.
//! - [`routes`]: the HTTP surface, one module per audience (public widget API,
//!   moderator API, operations), plus the few shared filters. Handlers translate
//!   HTTP to typed values and back; they decide nothing.
//! - [`domain`]: newtypes that can only hold valid values (uri, name, email,
//!   website, sanitized body, status) and the comment records built from them.
//! - [`store`]: every SQL statement, written once for both backends (SQLite,
//!   PostgreSQL); only what truly differs lives in a backend file.
//! - [`auth`]: moderator tokens (generation, hashing, constant-time check) and the
//!   lock-out of IPs that keep failing.
//! - [`rate_limit`]: who the client is (trusted proxies, IPv6 /64) and the per-client
//!   submission limit (`governor`; on PostgreSQL also shared by all instances, through `store`).
//! - [`thread_cache`]: serialized public thread pages, invalidated by moderation
//!   (and, on PostgreSQL, by other instances through `LISTEN/NOTIFY`).
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`notify`]: the building blocks of notifications: signed one-click links,
//!   SMTP settings, composed mails, webhook payloads and signatures, the retry
//!   schedule. Pure values; it reads neither the store nor the environment.
//! - [`outbox`]: the durable outbox: the dispatcher that turns notification
//!   events (written with each change) into mails and webhook calls, and the
//!   sender that delivers them with retries.
//! - [`i18n`]: the languages ([`i18n::Lang`]), choosing one from `Accept-Language`
//!   or a tag, and the server's compiled-in catalogs with their placeholder and
//!   CLDR plural formatter. It imports no other module of the crate.
//! - [`import`]: `marginalia import` (WordPress, Disqus, Isso, our own export),
//!   `export` and `backup`; one file per format, every record through the
//!   domain parsers and the `comments::import` use case, in one transaction.
//! - [`people`]: readers' data rights: everything held about one address
//!   (export) and its erasure (anonymize or delete), for the moderator API
//!   and `marginalia people`.
//! - [`retention`]: the background job that clears old IP addresses and user
//!   agents and deletes old spam and rejected comments.
//! - [`feeds`]: the Atom feeds of approved comments (the site's newest, one
//!   thread's): ids, links, rendering with `quick-xml`, cached in `thread_cache`.
//! - [`spam`]: the moderation rules (blocked and held words, links, honeypot,
//!   too fast, known authors), each a pure function with reasons, combined in
//!   one place; the in-process copy of the stored rules; the signed form token.
//! - [`classifier`]: the learning spam filter's model (tokens, counts, scores),
//!   pure; the store keeps its counts and refreshes its in-process copy.
//! - [`error`]: the one error type every failure is turned into; its JSON shape.
//! - [`telemetry`]: the tracing subscriber.
//!
//! - [`akismet`]: Akismet, with feedback: the checker that asks Akismet about
//!   each new comment off the request path, and the feedback calls the outbox
//!   sends when a moderator overrides a verdict. `akismet` → `state`,
//!   `comments`, `store`; `outbox` → `akismet`.
//!
//! Capabilities that arrive with v2 get a module each, beside these: `spam`
//! (rules, Akismet, the learning filter) and `feeds`.
//!
//! Dependencies point one way: `routes` → `links` → `comments` → `state` → `store`,
//! `auth`, `rate_limit`, `thread_cache`, `metrics` → `domain`. `startup` wires
//! `state`, `tasks`, `routes`, `outbox` and `server`; nothing imports `startup`.
//! `outbox` → `state`, `store`, `notify`; `notify` depends on `domain` and `i18n` only;
//! `import` → `comments`, `store`, `config`, `domain`, called by the binary alone.
//! `people` → `state`, `store`, `domain`, called by `routes` and the binary;
//! `retention` → `state`, `store`, `config`, `tasks`, started by `startup`.
//! `feeds` → `state`, `store`, `thread_cache`, `config`, `i18n`, `domain`, called by `routes`.

pub mod akismet;
pub mod auth;
pub mod classifier;
pub mod comments;
pub mod config;
pub mod domain;
pub mod error;
pub mod feeds;
pub mod i18n;
pub mod import;
pub mod links;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod people;
pub mod rate_limit;
pub mod retention;
pub mod routes;
pub mod server;
pub mod spam;
pub mod startup;
pub mod state;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod thread_cache;
pub mod threads;
