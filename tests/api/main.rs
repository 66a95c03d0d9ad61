//! Black-box tests of the HTTP API: each test starts a private server on a
//! random loopback port with its own database and talks HTTP to it.
//!
//! Every test runs against SQLite, and also against PostgreSQL when
//! `MARGINALIA_TEST_DATABASE_URL` names a PostgreSQL server (each test then
//! creates and drops a database of its own).

#[path = "../support/akismet_fake.rs"]
mod akismet_fake;
#[path = "../support/allow_list.rs"]
mod allow_list;
mod helpers;
#[path = "../support/pg_database.rs"]
mod pg_database;
// Not every helper of the SMTP server is used by this suite.
#[allow(dead_code)]
#[path = "../support/smtp_server.rs"]
mod smtp_server;
#[path = "../support/webhook_receiver.rs"]
mod webhook_receiver;

mod akismet;
mod auth;
mod cli;
mod cors;
mod errors;
mod feeds;
mod filter;
mod import;
mod instances;
mod languages;
mod links;
mod moderation;
mod notify_settings;
mod openapi;
mod ops;
mod outbox;
mod outbox_faults;
mod pages;
mod people;
mod privacy;
mod rate_limit;
mod restart;
mod retention;
mod sanitize;
mod server;
mod shared_limit;
mod site;
mod spam_rules;
mod store;
mod submit;
mod thread;
mod threads;
mod webhooks;
mod xss_corpus;
