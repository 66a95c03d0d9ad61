//! The binary's command line: help, migrate, tokens and the link secret.

use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::*;

fn marginalia(args: &[&str], database_url: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginalia"));
    command.args(args);
    // The tests' own environment must not leak into the child's configuration.
    for (key, _) in std::env::vars() {
        if key.starts_with("MARGINALIA_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    if let Some(url) = database_url {
        command.env("MARGINALIA_DATABASE_URL", url);
    }
    command.output().expect("the binary runs")
}

#[test]
fn help_lists_every_option_with_its_environment_variable() {
    for args in [&["--help"][..], &["serve", "--help"]] {
        let output = marginalia(args, None);
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        for (flag, env) in [
            ("--bind", "MARGINALIA_BIND"),
            ("--database-url", "MARGINALIA_DATABASE_URL"),
            ("--admin-token", "MARGINALIA_ADMIN_TOKEN"),
            ("--allowed-origins", "MARGINALIA_ALLOWED_ORIGINS"),
            ("--rate-limit-per-minute", "MARGINALIA_RATE_LIMIT_PER_MINUTE"),
            ("--rate-limit-burst", "MARGINALIA_RATE_LIMIT_BURST"),
            ("--trusted-proxies", "MARGINALIA_TRUSTED_PROXIES"),
            ("--max-connections", "MARGINALIA_MAX_CONNECTIONS"),
            ("--log", "MARGINALIA_LOG"),
            ("--smtp-url", "MARGINALIA_SMTP_URL"),
            ("--mail-from", "MARGINALIA_MAIL_FROM"),
            ("--notify-emails", "MARGINALIA_NOTIFY_EMAILS"),
            ("--notify-per-hour", "MARGINALIA_NOTIFY_PER_HOUR"),
            ("--link-ttl", "MARGINALIA_LINK_TTL"),
            ("--webhook-urls", "MARGINALIA_WEBHOOK_URLS"),
            ("--webhook-secret", "MARGINALIA_WEBHOOK_SECRET"),
            ("--webhook-format", "MARGINALIA_WEBHOOK_FORMAT"),
        ] {
            assert!(help.contains(flag), "{args:?} help lacks {flag}:\n{help}");
            assert!(help.contains(env), "{args:?} help lacks {env}:\n{help}");
        }
    }
}

#[tokio::test]
async fn migrate_creates_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let output = run_marginalia(&["migrate"], Some(&format!("sqlite://{}", path.display()))).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(path.exists());
}

#[tokio::test]
async fn tokens_created_on_the_command_line_moderate_until_revoked() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let url = app.database_url().to_owned();

        let created = run_marginalia(&["token", "create", "dora"], Some(&url)).await;
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
        let token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
        assert!(token.starts_with("mrg_"), "{token}");

        let again = run_marginalia(&["token", "create", "dora"], Some(&url)).await;
        assert!(!again.status.success(), "names are unique");

        let listed = run_marginalia(&["token", "list"], Some(&url)).await;
        let listing = String::from_utf8(listed.stdout).unwrap();
        assert!(listing.contains("dora"));
        assert!(!listing.contains(&token), "the list never shows a token");

        let id = app.submit("/cli/", "hello").await;
        let response = app
            .client
            .post(app.url(&format!("/api/admin/comments/{id}/approve")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);

        assert!(
            run_marginalia(&["token", "revoke", "dora"], Some(&url))
                .await
                .status
                .success()
        );
        assert!(
            !run_marginalia(&["token", "revoke", "dora"], Some(&url))
                .await
                .status
                .success()
        );
        let response = app
            .client
            .get(app.url("/api/admin/comments"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn the_admin_token_name_is_reserved() {
    let app = spawn_app(Backend::Sqlite).await;
    for name in ["admin", "Admin", " admin "] {
        let created = run_marginalia(&["token", "create", name], Some(app.database_url())).await;
        assert!(!created.status.success(), "`{name}` was accepted");
        let stderr = String::from_utf8_lossy(&created.stderr);
        assert!(
            stderr.contains("reserved") && stderr.contains("MARGINALIA_ADMIN_TOKEN"),
            "{stderr}"
        );
        assert!(created.stdout.is_empty(), "no token is shown");
    }
    let listed = run_marginalia(&["token", "list"], Some(app.database_url())).await;
    assert!(
        String::from_utf8(listed.stdout).unwrap().is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn secret_rotate_replaces_the_link_secret_and_says_what_that_means() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let url = app.database_url().to_owned();
        let store = marginalia::store::Store::connect(&url).await.unwrap();
        let before = store.link_secret().await.unwrap();

        let rotated = run_marginalia(&["secret", "rotate"], Some(&url)).await;
        let stderr = String::from_utf8_lossy(&rotated.stderr);
        assert!(rotated.status.success(), "{stderr}");
        assert!(stderr.contains("every earlier"), "{stderr}");
        assert!(stderr.contains("stops working"), "{stderr}");
        // The secret itself is never printed.
        let after = store.link_secret().await.unwrap();
        assert!(after != before);
        let printed = format!("{}{stderr}", String::from_utf8_lossy(&rotated.stdout));
        assert!(!printed.contains(&after.to_stored()), "the secret was printed");

        let again = run_marginalia(&["secret", "rotate"], Some(&url)).await;
        assert!(again.status.success());
        assert!(store.link_secret().await.unwrap() != after);
        store.close().await;
    })
    .await;
}
