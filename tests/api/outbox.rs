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

#[tokio::test]
async fn the_moderation_page_shows_the_settings_without_secrets_and_sends_a_test_mail() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, &smtp);
            config.webhook_urls = vec!["https://hooks.slack.example/services/T0/B0/SECRETPATH".into()];
            config.webhook_secret = Some(SecretString::from("webhook-key-not-to-be-shown"));
            config.webhook_format = "slack".into();
        })
        .await;
        let response = app
            .admin(reqwest::Method::GET, "/api/admin/notifications")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(!text.contains("SECRETPATH"), "{text}");
        assert!(!text.contains("webhook-key-not-to-be-shown"), "{text}");
        let settings: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(settings["mail"]["server"], format!("127.0.0.1:{}", smtp.port()));
        assert_eq!(settings["mail"]["security"], "none");
        assert_eq!(settings["moderators"], serde_json::json!(["mod@clinic.example"]));
        assert_eq!(settings["per_hour"], 10);
        assert_eq!(settings["link_ttl_seconds"], 7 * 24 * 3600);
        assert_eq!(
            settings["webhooks"]["hosts"],
            serde_json::json!(["hooks.slack.example"])
        );
        assert_eq!(settings["webhooks"]["format"], "slack");

        let bad = app
            .admin(reqwest::Method::POST, "/api/admin/notifications/test")
            .json(&serde_json::json!({"to": "not an address"}))
            .send()
            .await
            .unwrap();
        assert_error(bad, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "validation").await;

        let queued = app
            .admin(reqwest::Method::POST, "/api/admin/notifications/test")
            .json(&serde_json::json!({"to": "me@clinic.example"}))
            .send()
            .await
            .unwrap();
        assert_eq!(queued.status(), 202);
        let mail = tokio::time::timeout(Duration::from_secs(20), smtp.next_mail())
            .await
            .expect("the test mail arrives");
        assert_eq!(mail.rcpt_to, vec!["me@clinic.example".to_owned()]);
        let message = MessageParser::default().parse(&mail.data).unwrap();
        assert!(
            message.subject().unwrap().contains("Test mail"),
            "{:?}",
            message.subject()
        );
    })
    .await;
}

#[tokio::test]
async fn a_test_mail_without_an_smtp_server_is_a_conflict() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let settings: serde_json::Value = app
            .admin(reqwest::Method::GET, "/api/admin/notifications")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(settings["mail"].is_null(), "{settings}");
        assert!(settings["webhooks"].is_null(), "{settings}");
        let response = app
            .admin(reqwest::Method::POST, "/api/admin/notifications/test")
            .json(&serde_json::json!({"to": "me@clinic.example"}))
            .send()
            .await
            .unwrap();
        assert_error(response, reqwest::StatusCode::CONFLICT, "mail_not_configured").await;
    })
    .await;
}
