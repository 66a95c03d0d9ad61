//! Mail composed by `notify::mail` and sent through the transport that
//! `notify::smtp` builds, to a real SMTP server on a loopback port
//! (tests/support/smtp_server.rs), then parsed with a real MIME parser.

// Not every helper of the SMTP server is used by this test.
#[allow(dead_code)]
#[path = "support/smtp_server.rs"]
mod smtp_server;

use std::time::{Duration, SystemTime};

use lettre::AsyncTransport;
use mail_parser::MessageParser;
use marginalia::notify::mail::{
    Addressing, CommentForModerators, MessageId, ModerationLinks, ParentComment, Site, moderator_notification,
};
use marginalia::notify::smtp::MailSettings;
use smtp_server::SmtpServer;

const FROM: &str = "Clinic blog <comments@clinic.example>";

fn notification(settings: &MailSettings) -> lettre::Message {
    let addressing = Addressing {
        from: settings.from.clone(),
        to: "Moderator <mod@clinic.example>".parse().unwrap(),
        message_id: MessageId::new("outbox-1", "comments.clinic.example").unwrap(),
        date: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        lang: marginalia::i18n::Lang::En,
    };
    let site = Site {
        name: "Clinic blog".into(),
        url: "https://blog.clinic.example".into(),
    };
    let comment = CommentForModerators {
        id: 42,
        uri: "/occupational-therapy/".into(),
        name: "Maya".into(),
        email: "maya@reader.example".into(),
        website: None,
        // A lone dot ends DATA unless the client stuffs it: it must arrive intact.
        text: "First line\n.\n..two dots\nLast line, ünïcödé".into(),
        ip: None,
        user_agent: None,
        reasons: String::new(),
        parent: Some(ParentComment {
            name: "Dr. Ahn".into(),
            text: "Ask me anything.".into(),
        }),
    };
    let links = ModerationLinks {
        approve: "https://comments.clinic.example/moderate/a".into(),
        reject: "https://comments.clinic.example/moderate/r".into(),
        spam: "https://comments.clinic.example/moderate/s".into(),
    };
    moderator_notification(
        &addressing,
        &site,
        &comment,
        &links,
        "https://comments.clinic.example/admin",
    )
    .unwrap()
}

#[tokio::test]
async fn a_composed_mail_arrives_whole_through_plain_smtp_with_auth() {
    let mut server = SmtpServer::start_with_login("mailer", "p@ss:word").await;
    let url = format!("smtp://mailer:p%40ss%3Aword@127.0.0.1:{}?tls=none", server.port());
    let settings = MailSettings::parse(&url, FROM).unwrap();
    let transport = settings.transport().unwrap();

    let response = transport.send(notification(&settings)).await.unwrap();
    assert!(response.is_positive());

    let mail = server.next_mail().await;
    assert_eq!(mail.authenticated_as.as_deref(), Some("mailer"));
    assert_eq!(mail.mail_from, "comments@clinic.example");
    assert_eq!(mail.rcpt_to, ["mod@clinic.example"]);
    let parsed = MessageParser::default().parse(&mail.data).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("[Clinic blog] New comment awaiting moderation on /occupational-therapy/ from Maya")
    );
    assert_eq!(parsed.message_id(), Some("outbox-1@comments.clinic.example"));
    assert_eq!(parsed.date().unwrap().to_timestamp(), 1_800_000_000);
    assert_eq!(parsed.text_body_count(), 1);
    assert_eq!(parsed.html_body_count(), 1);
    let text = parsed.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(
        text.contains("First line\n.\n..two dots\nLast line, ünïcödé"),
        "{text}"
    );
    assert!(text.contains("Approve: https://comments.clinic.example/moderate/a"));
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("href=\"https://comments.clinic.example/moderate/s\""));
    assert!(server.try_next_mail().is_none(), "one message, delivered once");
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_nothing_is_delivered() {
    let mut server = SmtpServer::start_with_login("mailer", "right").await;
    let url = format!("smtp://mailer:wrong@127.0.0.1:{}?tls=none", server.port());
    let settings = MailSettings::parse(&url, FROM).unwrap();
    let error = settings
        .transport()
        .unwrap()
        .send(notification(&settings))
        .await
        .unwrap_err();
    assert!(error.is_permanent(), "{error}");
    assert!(server.try_next_mail().is_none());
}

/// `smtp://` means STARTTLS is required: a server that does not offer it (or a
/// man in the middle who strips the offer) gets no mail in clear text.
#[tokio::test]
async fn starttls_is_required_and_never_downgraded_to_plain_text() {
    let mut server = SmtpServer::start().await;
    let url = format!("smtp://127.0.0.1:{}", server.port());
    let settings = MailSettings::parse(&url, FROM).unwrap();
    let result = settings.transport().unwrap().send(notification(&settings)).await;
    assert!(result.is_err(), "sent without encryption: {result:?}");
    assert!(server.try_next_mail().is_none());

    // The same server takes the mail when plain text is asked for explicitly.
    let url = format!("smtp://127.0.0.1:{}?tls=none", server.port());
    let settings = MailSettings::parse(&url, FROM).unwrap();
    settings
        .transport()
        .unwrap()
        .send(notification(&settings))
        .await
        .unwrap();
    assert_eq!(server.next_mail().await.rcpt_to, ["mod@clinic.example"]);
}
