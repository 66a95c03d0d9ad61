//! Crashes and outages lose nothing acknowledged: the real `marginalia`
//! binary runs as a child process on a free loopback port and is killed,
//! stopped, starved of its database or of disk space while clients write.
//!
//! - `kill`: SIGKILL under write load, SQLite always, PostgreSQL when
//!   `MARGINALIA_TEST_DATABASE_URL` is set;
//! - `sigterm`: graceful shutdown under load (SQLite, always);
//! - `pg_outage`: a PostgreSQL cluster of the test's own is stopped and
//!   started again under the running service;
//! - `disk`: the SQLite file on a small tmpfs that fills up, and on a volume
//!   that is read-only;
//! - `outbox`: SIGKILL with moderator mail queued while the SMTP server is
//!   down; after a restart every mail arrives once (SQLite always,
//!   PostgreSQL when `MARGINALIA_TEST_DATABASE_URL` is set).
//!
//! The last two need root, `mount` and the PostgreSQL server binaries: they
//! run only with `MARGINALIA_TEST_PRIVILEGED=1` and otherwise say they skip.

mod harness;
#[path = "../support/pg_database.rs"]
mod pg_database;
// Not every helper of the SMTP server is used by this suite.
#[allow(dead_code)]
#[path = "../support/smtp_server.rs"]
mod smtp_server;

mod disk;
mod kill;
mod outbox;
mod pg_outage;
mod sigterm;
