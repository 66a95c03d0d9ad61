//! The notification options (SMTP, From, moderators, webhooks, link lifetime)
//! are checked at start-up: a value that could not work stops the service
//! before the database is opened, with a message naming the variable; valid
//! settings start it.

use reqwest::StatusCode;

use crate::helpers::*;

/// Runs `marginalia serve` with `env` only (plus a private SQLite file, which
/// must not exist afterwards) and returns its stderr and whether it failed.
fn refused_start(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marginalia.db");
    let output = serve_with(env, &format!("sqlite://{}", path.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{env:?}: started anyway");
    assert!(!path.exists(), "{env:?}: the database was created");
    stderr
}

const FROM: &str = "Clinic blog <comments@clinic.example>";

#[test]
fn a_bad_smtp_url_stops_start_up_naming_the_variable_and_hiding_the_password() {
    for bad in [
        "http://ada:hunter2@mail.example:587",
        "smtp://ada:hunter2@",
        "mail.example:587",
    ] {
        let stderr = refused_start(&[("MARGINALIA_SMTP_URL", bad), ("MARGINALIA_MAIL_FROM", FROM)]);
        assert!(stderr.contains("MARGINALIA_SMTP_URL"), "{bad}: {stderr}");
        assert!(
            !stderr.contains("hunter2"),
            "{bad}: the password was shown: {stderr}"
        );
    }
}

#[test]
fn a_bad_or_missing_from_address_stops_start_up() {
    let smtp = ("MARGINALIA_SMTP_URL", "smtp://127.0.0.1:2525?tls=none");
    for bad in ["not an address", "Clinic <>", "a@b.example, c@d.example"] {
        let stderr = refused_start(&[smtp, ("MARGINALIA_MAIL_FROM", bad)]);
        assert!(stderr.contains("MARGINALIA_MAIL_FROM"), "{bad}: {stderr}");
    }
    let stderr = refused_start(&[smtp]);
    assert!(stderr.contains("MARGINALIA_MAIL_FROM is required"), "{stderr}");
}

#[test]
fn other_bad_notification_options_stop_start_up_naming_the_variable() {
    let smtp = ("MARGINALIA_SMTP_URL", "smtp://127.0.0.1:2525?tls=none");
    let from = ("MARGINALIA_MAIL_FROM", FROM);
    for (env, variable) in [
        (
            vec![("MARGINALIA_NOTIFY_EMAILS", "mod@clinic.example")],
            "MARGINALIA_NOTIFY_EMAILS",
        ),
        (
            vec![smtp, from, ("MARGINALIA_NOTIFY_EMAILS", "mod@")],
            "MARGINALIA_NOTIFY_EMAILS",
        ),
        (
            vec![("MARGINALIA_NOTIFY_PER_HOUR", "0")],
            "MARGINALIA_NOTIFY_PER_HOUR",
        ),
        (vec![("MARGINALIA_LINK_TTL", "7")], "MARGINALIA_LINK_TTL"),
        (vec![("MARGINALIA_LINK_TTL", "400d")], "MARGINALIA_LINK_TTL"),
        (
            vec![("MARGINALIA_WEBHOOK_URLS", "https://hooks.example/in")],
            "MARGINALIA_WEBHOOK_SECRET",
        ),
        (
            vec![
                ("MARGINALIA_WEBHOOK_URLS", "hooks.example/in"),
                ("MARGINALIA_WEBHOOK_SECRET", "k"),
            ],
            "MARGINALIA_WEBHOOK_URLS",
        ),
        (
            vec![("MARGINALIA_WEBHOOK_FORMAT", "teams")],
            "MARGINALIA_WEBHOOK_FORMAT",
        ),
    ] {
        let stderr = refused_start(&env);
        assert!(stderr.contains(variable), "{env:?}: {stderr}");
    }
}

#[tokio::test]
async fn valid_notification_settings_start_and_are_kept_resolved() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.smtp_url = Some("smtp://127.0.0.1:2525?tls=none".into());
            config.mail_from = Some(FROM.into());
            config.notify_emails = vec!["mod@clinic.example".into(), "boss@clinic.example".into()];
            config.notify_per_hour = 2;
            config.link_ttl = "36h".into();
            config.webhook_urls = vec!["http://127.0.0.1:9/hook".into()];
            config.webhook_secret = Some("whsec-test".into());
            config.webhook_format = "slack".into();
        })
        .await;
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        let settings = app.config.notify().unwrap();
        assert_eq!(settings.moderator_emails.len(), 2);
        assert_eq!(settings.link_ttl, std::time::Duration::from_secs(36 * 3600));

        // The same check runs in `App::build`, before the database is opened.
        let bad = marginalia::startup::App::build(&marginalia::config::Config {
            mail_from: Some("nobody".into()),
            ..app.config.clone()
        })
        .await;
        let error = bad.err().expect("a bad From is refused").to_string();
        assert!(error.contains("MARGINALIA_MAIL_FROM"), "{error}");
    })
    .await;
}

/// Opens the test database directly, as another process would.
async fn store_of(url: &str) -> marginalia::store::Store {
    marginalia::store::Store::connect(url).await.unwrap()
}

#[tokio::test]
async fn instances_starting_together_on_one_database_share_one_link_secret() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let config = test_config(database.url());
        // Migrated first: two SQLite instances cannot migrate one file at once
        // (nor should they run together in production); the secret is still to make.
        let store = store_of(database.url()).await;
        store.migrate().await.unwrap();
        // Neither finds a secret: both offer one, and both must end up with the same.
        let (first, second) = tokio::join!(
            marginalia::startup::App::build(&config),
            marginalia::startup::App::build(&config)
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(first.link_secret() == second.link_secret());

        assert!(store.link_secret().await.unwrap() == *first.link_secret());
        let third = marginalia::startup::App::build(&config).await.unwrap();
        assert!(
            third.link_secret() == first.link_secret(),
            "a restart keeps the secret"
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn rotating_the_link_secret_replaces_it_for_every_later_start() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let config = test_config(database.url());
        let before = marginalia::startup::App::build(&config).await.unwrap();

        let store = store_of(database.url()).await;
        let rotated = store.rotate_link_secret().await.unwrap();
        assert!(rotated != *before.link_secret());
        assert!(
            store.link_secret().await.unwrap() == rotated,
            "read back: the new one"
        );

        let after = marginalia::startup::App::build(&config).await.unwrap();
        assert!(*after.link_secret() == rotated);
        store.close().await;
    })
    .await;
}
