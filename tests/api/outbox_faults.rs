//! The outbox under faults: the SMTP server down during a burst of
//! submissions, and two instances sending from one PostgreSQL database.
//! Every message must arrive, and none twice (told apart by `Message-ID`).
//! The kill -9 case runs the real binary: `tests/resilience/outbox.rs`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::*;
use crate::outbox::{Mail, QUIET, with_mail};
use crate::smtp_server::SmtpServer;

/// A loopback port with nothing listening on it (yet): bound once to get a
/// free one, then released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One series of the `/metrics` at `url`, 0 when absent.
async fn metric_at(client: &reqwest::Client, url: &str, series: &str) -> f64 {
    let text = client.get(url).send().await.unwrap().text().await.unwrap();
    metric_value(&text, series)
}

/// Collects mails until every (recipient, comment name) in `expected` has
/// arrived, failing after `limit`; then watches for [`QUIET`] for more.
/// Asserts none arrived twice, by Message-ID or by what it is about.
/// Returns the mails and when the first and the last expected one came.
async fn collect_exactly(
    smtp: &mut SmtpServer,
    expected: &HashSet<(String, String)>,
    limit: Duration,
) -> (Vec<Mail>, Instant, Instant) {
    let started = Instant::now();
    let mut mails = Vec::new();
    let mut seen = HashSet::new();
    let mut message_ids = HashSet::new();
    let mut first = None;
    let mut record = |mail: Mail, seen: &mut HashSet<(String, String)>| {
        assert!(
            message_ids.insert(mail.message_id.clone()),
            "Message-ID {} delivered twice",
            mail.message_id
        );
        let name = mail
            .subject
            .rsplit_once(" from ")
            .map(|(_, name)| name.to_owned())
            .expect("a moderator mail's subject");
        assert_eq!(mail.rcpt_to.len(), 1);
        let key = (mail.rcpt_to[0].clone(), name);
        assert!(expected.contains(&key), "an unexpected mail {key:?}");
        assert!(seen.insert(key.clone()), "{key:?} mailed twice");
        mails.push(mail);
    };
    while seen.len() < expected.len() {
        let left = limit.saturating_sub(started.elapsed());
        let received = tokio::time::timeout(left, smtp.next_mail())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "after {limit:?}, {} of {} mails arrived",
                    seen.len(),
                    expected.len()
                )
            });
        first.get_or_insert_with(Instant::now);
        record(Mail::parse(&received), &mut seen);
    }
    let last = Instant::now();
    tokio::time::sleep(QUIET).await;
    while let Some(extra) = smtp.try_next_mail() {
        // Fails: either a duplicate or something never asked for.
        record(Mail::parse(&extra), &mut seen);
    }
    (mails, first.unwrap_or(last), last)
}

/// SMTP is down while 20 comments arrive for two moderators (nothing listens
/// on the configured port); every first try fails. Then the server comes up
/// on that port: all 40 mails arrive at the first retry, each once.
#[tokio::test]
async fn mail_queued_during_an_smtp_outage_arrives_once_when_it_ends() {
    let moderators = ["mod@clinic.example", "second@clinic.example"];
    for_each_backend(|backend| async move {
        let port = closed_port();
        let app = spawn_app_with(backend, |config| with_mail(config, port, &moderators)).await;
        let burst_started = Instant::now();
        let ids = join_all((1..=20).map(|i| {
            app.submit_with(json!({"uri": "/burst/", "name": format!("Reader {i}"),
                                   "body": format!("burst comment {i}")}))
        }))
        .await;
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 20);

        // Every delivery has been tried and has failed once.
        let expected_count = (ids.len() * moderators.len()) as f64;
        let retried = r#"marginalia_notifications_retried_total{kind="moderator_mail"}"#;
        let queued = r#"marginalia_notifications_queued{kind="moderator_mail"}"#;
        while metric(&app, retried).await < expected_count {
            assert!(
                burst_started.elapsed() < Duration::from_secs(10),
                "the first tries did not all fail within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let outage = burst_started.elapsed();
        assert_eq!(metric(&app, queued).await, expected_count);
        assert_eq!(
            metric(
                &app,
                r#"marginalia_notifications_sent_total{kind="moderator_mail"}"#
            )
            .await,
            0.0
        );

        let mut smtp = SmtpServer::start_on(port).await;
        let up = Instant::now();
        let expected: HashSet<(String, String)> = moderators
            .iter()
            .flat_map(|moderator| (1..=20).map(move |i| (moderator.to_string(), format!("Reader {i}"))))
            .collect();
        let (mails, first, last) = collect_exactly(&mut smtp, &expected, Duration::from_secs(40)).await;
        let arrived = last - up;
        eprintln!(
            "SMTP outage ({backend:?}): 20 submissions, {} mails for 2 moderators; every first try \
             had failed {outage:.1?} after the burst began, when the server came up; the first \
             mail arrived {:.1?} and the last {arrived:.1?} after that ({:.1?} after the burst \
             began); duplicates: 0",
            mails.len(),
            first - up,
            last - burst_started
        );
        assert!(
            arrived <= Duration::from_secs(30),
            "took {arrived:?} after SMTP came back"
        );
        assert_eq!(metric(&app, queued).await, 0.0);
        assert_eq!(
            metric(
                &app,
                r#"marginalia_notifications_sent_total{kind="moderator_mail"}"#
            )
            .await,
            expected_count
        );
    })
    .await;
}

/// Two instances on one PostgreSQL database, 20 submissions spread over
/// both: each moderator mail goes out exactly once, and each outbox row was
/// claimed exactly once. The SMTP server takes 250 ms per message, so while
/// one instance sends a claim of mails the other claims the rest: both send.
#[tokio::test]
async fn two_instances_on_postgres_send_each_mail_once() {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let mut smtp = SmtpServer::start_slow(Duration::from_millis(250)).await;
    let a = spawn_app_with(Backend::Postgres, |config| {
        with_mail(config, smtp.port(), &["mod@clinic.example"]);
    })
    .await;
    let mut config = a.config.clone();
    config.bind = "127.0.0.1:0".parse().unwrap();
    let b = marginalia::startup::App::build(&config).await.unwrap();
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));

    let client = reqwest::Client::new();
    let started = Instant::now();
    let submissions = (1..=20).map(|i| {
        let url = if i % 2 == 0 {
            a.url("/api/comments")
        } else {
            format!("http://{b_address}/api/comments")
        };
        let client = client.clone();
        async move {
            let response = client
                .post(url)
                .json(
                    &json!({"uri": "/two/", "name": format!("Reader {i}"), "email": "r@example.org",
                              "body": format!("two instances {i}")}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
        }
    });
    join_all(submissions).await;

    let expected: HashSet<(String, String)> = (1..=20)
        .map(|i| ("mod@clinic.example".to_owned(), format!("Reader {i}")))
        .collect();
    let (mails, _, last) = collect_exactly(&mut smtp, &expected, Duration::from_secs(30)).await;
    // Which SMTP connection each came over: the instances have a client
    // each, so more than one connection means both sent (not asserted: one
    // instance may take every row, which is as correct).
    let mut per_connection: HashMap<std::net::SocketAddr, usize> = HashMap::new();
    for mail in &mails {
        *per_connection.entry(mail.peer).or_default() += 1;
    }
    let mut database = RawDatabase::connect(a.database_url()).await;
    assert_eq!(
        database
            .count("SELECT COUNT(*) FROM outbox WHERE kind = 'moderator_mail' AND sent_at IS NOT NULL")
            .await,
        20
    );
    assert_eq!(
        database
            .count("SELECT COUNT(*) FROM outbox WHERE attempts <> 1")
            .await,
        0,
        "a delivery was claimed more than once"
    );
    assert_eq!(
        database
            .count("SELECT COUNT(*) FROM notification_events WHERE event = 'comment.pending'")
            .await,
        0
    );
    let mut shares: Vec<usize> = per_connection.into_values().collect();
    shares.sort_unstable();
    // Each instance counts what it sent itself.
    let sent = r#"marginalia_notifications_sent_total{kind="moderator_mail"}"#;
    let by_a = metric_at(&client, &a.url("/metrics"), sent).await;
    let by_b = metric_at(&client, &format!("http://{b_address}/metrics"), sent).await;
    eprintln!(
        "two instances on PostgreSQL: 20 submissions, {} mails, all within {:.1?} of the first \
         submission, duplicates: 0; sent by each instance: {by_a} and {by_b}; mails per SMTP \
         connection: {shares:?}",
        mails.len(),
        last - started
    );
    assert_eq!(by_a + by_b, 20.0);
    assert!(
        by_a > 0.0 && by_b > 0.0,
        "one instance sent everything: {by_a} / {by_b}"
    );
    b_server.abort();
}

/// A slow mail server (half a second per message) and a backlog of eight
/// mails: the outbox sends several at once, each over its own connection,
/// never more than `notify::SENDS_AT_ONCE`, and each mail exactly once. One
/// at a time, they would all come over one pooled connection.
#[tokio::test]
async fn a_backlog_is_sent_over_several_connections_at_once() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start_slow(Duration::from_millis(500)).await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, smtp.port(), &["mod@clinic.example"])
        })
        .await;
        for i in 1..=8 {
            app.submit_with(
                json!({"uri": "/backlog/", "name": format!("Reader {i}"), "body": format!("backlog {i}")}),
            )
            .await;
        }
        let expected: HashSet<(String, String)> = (1..=8)
            .map(|i| ("mod@clinic.example".to_owned(), format!("Reader {i}")))
            .collect();
        let (mails, _, _) = collect_exactly(&mut smtp, &expected, Duration::from_secs(30)).await;
        let connections: HashSet<std::net::SocketAddr> = mails.iter().map(|mail| mail.peer).collect();
        assert!(
            (2..=marginalia::notify::SENDS_AT_ONCE).contains(&connections.len()),
            "8 mails came over {} connection(s)",
            connections.len()
        );
    })
    .await;
}
