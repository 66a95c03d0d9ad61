//! The `marginalia` binary: parse the command line, set up logging, then serve,
//! migrate, manage tokens, rotate the link secret, import, export or back up.
//! Everything else lives in the library.

use anyhow::Context;
use clap::Parser;
use secrecy::ExposeSecret;

use marginalia::auth;
use marginalia::config::{Cli, Command, Config, DatabaseArgs, PeopleAction, SecretAction, TokenAction};
use marginalia::domain::Email;
use marginalia::import;
use marginalia::people;
use marginalia::startup::App;
use marginalia::store::{ErasureMode, Store, TokenInsertError};
use marginalia::telemetry;

fn main() -> anyhow::Result<()> {
    // Before the runtime starts any thread: arenas are created per thread.
    limit_malloc_arenas();
    run()
}

/// glibc's malloc arenas, at most, unless the operator set `MALLOC_ARENA_MAX`.
/// glibc's default is eight per core, and with the runtime's workers and one
/// SQLite thread per pooled connection each burst spread its garbage over a
/// dozen arenas: peak RSS after a 256-connection write burst went from 60–69
/// MiB to 53 MiB with two (BENCHMARKS.md, "Issue #14: the submission path").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    const MALLOC_ARENAS: libc::c_int = 2;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a malloc tunable; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(Command::Migrate(database)) => {
            let _guard = telemetry::init("info");
            let store = open(&database).await?;
            store.migrate().await?;
            tracing::info!(database = %Store::describe(&database.url()), "migrations applied");
            Ok(())
        }
        Some(Command::Token { database, action }) => manage_tokens(&database, action).await,
        Some(Command::Secret { database, action }) => manage_secret(&database, action).await,
        Some(Command::Import {
            database,
            format,
            file,
            dry_run,
            uri_from,
        }) => import_file(&database, format, &file, import::Options { dry_run, uri_from }).await,
        Some(Command::Export { database, output }) => {
            let store = open(&database).await?;
            store.migrate().await?;
            let written = import::export::write(&store, output.as_deref()).await?;
            store.close().await;
            eprintln!("Exported {written} comments.");
            Ok(())
        }
        Some(Command::Backup { database, path }) => {
            if path.exists() {
                anyhow::bail!("{} exists already; a backup goes into a new file", path.display());
            }
            let store = open(&database).await?;
            store.backup(&path).await?;
            store.close().await;
            eprintln!("Backed up to {}.", path.display());
            Ok(())
        }
        Some(Command::People { database, action }) => manage_people(&database, action).await,
    }
}

/// `marginalia import`: the summary goes to standard output; a malformed
/// file or a failing database ends with a non-zero status, nothing written.
async fn import_file(
    database: &DatabaseArgs,
    format: import::Format,
    file: &std::path::Path,
    options: import::Options,
) -> anyhow::Result<()> {
    let _guard = telemetry::init("warn");
    let store = open(database).await?;
    store.migrate().await?;
    let result = import::run(&store, format, file, options).await;
    store.close().await;
    let summary = result?;
    print!("{summary}");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let _guard = telemetry::init(&config.log_filter());
    let mut app = App::build(&config).await?;
    let address = app.address();
    tracing::info!(
        %address,
        database = %Store::describe(&config.database.url()),
        backend = app.backend_name(),
        public_url = %app.site().public_url,
        site_url = %app.site().site_url,
        "marginalia is serving"
    );
    if let Some(token) = app.take_first_token() {
        // Shown once, on the terminal only: it is not logged anywhere.
        println!(
            "\nNo moderator token existed, so one was created (named `{}`); it is shown only now:\n\n    {}\n\n\
             Use it as `Authorization: Bearer <token>` on /api/admin/*, or log in at {}.\n\
             Create more with `marginalia token create NAME`, or set MARGINALIA_ADMIN_TOKEN.\n",
            auth::FIRST_TOKEN_NAME,
            token.expose_secret(),
            app.site().public_link("/admin")
        );
    } else if config.admin_token.is_none() {
        tracing::info!(
            "moderator tokens are stored in the database; create one with `marginalia token create NAME` \
             or set MARGINALIA_ADMIN_TOKEN"
        );
    }
    app.run(shutdown_signal()).await;
    Ok(())
}

async fn open(database: &DatabaseArgs) -> anyhow::Result<Store> {
    let url = database.url();
    Store::connect(&url)
        .await
        .with_context(|| format!("opening {}", Store::describe(&url)))
}

async fn manage_tokens(database: &DatabaseArgs, action: TokenAction) -> anyhow::Result<()> {
    let store = open(database).await?;
    store.migrate().await?;
    match action {
        TokenAction::Create { name } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
                anyhow::bail!("a token name must be 1-80 characters without control characters");
            }
            match auth::create_token(&store, name).await {
                Ok(token) => {
                    eprintln!("Created token `{name}`. It is shown only once:");
                    println!("{}", token.expose_secret());
                }
                Err(TokenInsertError::Reserved(name)) => {
                    anyhow::bail!(
                        "the name `{name}` is reserved for MARGINALIA_ADMIN_TOKEN; choose another name"
                    )
                }
                Err(TokenInsertError::NameTaken(name)) => {
                    anyhow::bail!("a token named `{name}` already exists; revoke it first")
                }
                Err(TokenInsertError::Store(error)) => return Err(error).context("storing the token"),
            }
        }
        TokenAction::List => {
            for token in store.list_tokens().await? {
                println!("{}\tcreated {}", token.name, token.created_at);
            }
        }
        TokenAction::Revoke { name } => {
            if !store.revoke_token(&name).await? {
                anyhow::bail!("no token named `{name}`");
            }
            eprintln!("Revoked token `{name}`.");
        }
    }
    store.close().await;
    Ok(())
}

async fn manage_secret(database: &DatabaseArgs, action: SecretAction) -> anyhow::Result<()> {
    let store = open(database).await?;
    store.migrate().await?;
    match action {
        SecretAction::Rotate => {
            store
                .rotate_link_secret()
                .await
                .context("storing the new link-signing secret")?;
            eprintln!(
                "A new link-signing secret is stored: every earlier moderation, subscription and \
                 unsubscribe link stops working. Running instances use it once restarted."
            );
        }
    }
    store.close().await;
    Ok(())
}

/// `marginalia people export|erase EMAIL`: the JSON or the summary on
/// standard output. An erasure is recorded as moderated by `cli`. A running
/// SQLite instance keeps its cached pages of the touched threads until it
/// restarts (PostgreSQL instances hear of the change); the moderator API's
/// `DELETE /api/admin/people` has no such delay.
async fn manage_people(database: &DatabaseArgs, action: PeopleAction) -> anyhow::Result<()> {
    let _guard = telemetry::init("warn");
    let parse = |email: &str| Email::parse(email).map_err(|reason| anyhow::anyhow!("EMAIL {reason}"));
    let store = open(database).await?;
    store.migrate().await?;
    let result = async {
        match action {
            PeopleAction::Export { email } => {
                let export = people::export(&store, &parse(&email)?).await?;
                println!("{}", serde_json::to_string_pretty(&export)?);
            }
            PeopleAction::Erase {
                email,
                delete_comments,
            } => {
                let mode = if delete_comments {
                    ErasureMode::Delete
                } else {
                    ErasureMode::Anonymize
                };
                let erased = people::erase(&store, &parse(&email)?, mode, "cli").await?;
                let verb = if delete_comments { "Deleted" } else { "Anonymized" };
                println!(
                    "{verb} {} comment(s); removed {} subscription(s) and {} mail(s) to the address.",
                    erased.comments, erased.subscriptions, erased.mails
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
