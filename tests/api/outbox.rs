//! The outbox end to end: a submission reaches the moderators as a real mail
//! through a real SMTP server on a loopback port.

use std::time::Duration;

use mail_parser::MessageParser;
use secrecy::SecretString;

use crate::helpers::*;
use crate::smtp_server::SmtpServer;

fn with_mail(config: &mut marginalia::config::Config, smtp: &SmtpServer) {
    config.smtp_url = Some(SecretString::from(format!(
        "smtp://127.0.0.1:{}?tls=none",
        smtp.port()
    )));
    config.mail_from = Some("Clinic blog <comments@clinic.example>".into());
    config.notify_emails = vec!["mod@clinic.example".into()];
}

#[tokio::test]
async fn a_queued_comment_is_mailed_to_the_moderator() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, &smtp)).await;
        let id = app
            .submit_with(
                serde_json::json!({"uri": "/occupational-therapy/", "name": "Maya", "body": "Hello there"}),
            )
            .await;
        let mail = tokio::time::timeout(Duration::from_secs(20), smtp.next_mail())
            .await
            .expect("the moderator mail arrives");
        assert_eq!(mail.rcpt_to, vec!["mod@clinic.example".to_owned()]);
        let message = MessageParser::default().parse(&mail.data).unwrap();
        let subject = message.subject().unwrap();
        assert!(
            subject.contains("New comment awaiting moderation on /occupational-therapy/ from Maya"),
            "{subject}"
        );
        let text = message.body_text(0).unwrap();
        assert!(text.contains("Hello there"), "{text}");
        assert!(text.contains("/moderate/"), "{text}");
        assert!(id > 0);
    })
    .await;
}
