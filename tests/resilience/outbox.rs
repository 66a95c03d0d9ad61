//! kill -9 with mail queued: the binary runs with its SMTP server down (the
//! configured port has nothing listening), takes N comments, and `/metrics`
//! shows their N moderator mails queued; it is SIGKILLed; the SMTP server
//! comes up on that port and the binary starts again on the same database:
//! all N mails arrive, none twice (by `Message-ID`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;

use crate::harness::*;
use crate::pg_database::PgDatabase;
use crate::smtp_server::SmtpServer;

/// Comments submitted before the kill.
const COMMENTS: usize = 12;
const MODERATOR: &str = "mod@clinic.example";

/// One series of `/metrics`, 0 when absent.
async fn metric(server: &Server, series: &str) -> f64 {
    let text = server
        .get("/metrics")
        .await
        .expect("an answer")
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn queued_mail_survives_kill_9(database_url: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let launch = Launch::new(database_url, dir.path())
        .env(
            "MARGINALIA_SMTP_URL",
            &format!("smtp://127.0.0.1:{smtp_port}?tls=none"),
        )
        .env("MARGINALIA_MAIL_FROM", "Clinic blog <comments@clinic.example>")
        .env("MARGINALIA_NOTIFY_EMAILS", MODERATOR)
        .env("MARGINALIA_NOTIFY_PER_HOUR", "100")
        .env("MARGINALIA_SITE_NAME", "Clinic blog");

    let mut server = Server::start(&launch).await;
    for i in 1..=COMMENTS {
        let mut comment = comment("/killed/", &format!("queued before the kill {i}"));
        comment["name"] = format!("Reader {i}").into();
        let (status, answer) = server.post_comment(&comment).await.expect("an answer");
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{answer}");
    }
    // Queued, and each tried once and failed (the SMTP server is down): from
    // now until the first retry (10 s later) no delivery is in a sender's hands.
    let queued = r#"marginalia_notifications_queued{kind="moderator_mail"}"#;
    let retried = r#"marginalia_notifications_retried_total{kind="moderator_mail"}"#;
    poll_until(
        "the mails queued and tried once",
        Duration::from_secs(10),
        || async {
            let tried = metric(&server, retried).await >= COMMENTS as f64;
            (tried && metric(&server, queued).await == COMMENTS as f64).then_some(())
        },
    )
    .await;
    server.assert_no_panic();
    server.kill9();

    let mut smtp = SmtpServer::start_on(smtp_port).await;
    let restarted_at = Instant::now();
    let server = Server::start(&launch).await;
    let mut names = HashSet::new();
    let mut message_ids = HashSet::new();
    while names.len() < COMMENTS {
        let mail = smtp.next_mail().await;
        assert_eq!(mail.rcpt_to, [MODERATOR]);
        let parsed = MessageParser::default()
            .parse(&mail.data)
            .expect("a MIME message");
        let message_id = parsed.message_id().expect("a Message-ID").to_owned();
        assert!(
            message_ids.insert(message_id.clone()),
            "Message-ID {message_id} twice"
        );
        let subject = parsed.subject().unwrap_or_default();
        let name = subject
            .rsplit_once(" from ")
            .expect("a moderator mail")
            .1
            .to_owned();
        assert!(names.insert(name.clone()), "the mail about {name} twice");
        assert!(
            restarted_at.elapsed() < Duration::from_secs(40),
            "only {} of {COMMENTS} mails within 40 s of the restart",
            names.len()
        );
    }
    let delivered_after = restarted_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(extra) = smtp.try_next_mail() {
        panic!(
            "a mail beyond the {COMMENTS} expected: {}",
            String::from_utf8_lossy(&extra.data)
        );
    }
    let expected: HashSet<String> = (1..=COMMENTS).map(|i| format!("Reader {i}")).collect();
    assert_eq!(names, expected);
    assert_eq!(metric(&server, queued).await, 0.0);
    assert_eq!(
        metric(
            &server,
            r#"marginalia_notifications_sent_total{kind="moderator_mail"}"#
        )
        .await,
        COMMENTS as f64
    );
    server.assert_no_panic();
    eprintln!(
        "kill -9 with mail queued ({label}): {COMMENTS} moderator mails queued and tried once, \
         SIGKILL, SMTP up, restart: all {COMMENTS} arrived {delivered_after:.1?} after the restart, \
         duplicates: 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_mail_queued_loses_none_and_sends_none_twice_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("marginalia.db").display());
    queued_mail_survives_kill_9(&url, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_mail_queued_loses_none_and_sends_none_twice_postgres() {
    let Some(server_url) = postgres_server_url() else {
        eprintln!("kill -9 with mail queued on PostgreSQL: skipped: needs MARGINALIA_TEST_DATABASE_URL");
        return;
    };
    let database = PgDatabase::create(&server_url).await;
    queued_mail_survives_kill_9(&database.url, "PostgreSQL").await;
}
