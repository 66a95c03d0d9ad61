//! Languages, end to end: pages answer in the language of `Accept-Language`
//! (else `MARGINALIA_LANG`), moderators get mail in `MARGINALIA_LANG`,
//! readers in the language their page sent as `lang`, and `lang` is checked
//! and kept. The expected texts are written out here rather than read from
//! the catalogs, so a catalog that silently fell back to English would fail.

use std::time::Duration;

use mail_parser::{Message, MessageParser};
use marginalia::domain::Email;
use marginalia::i18n::Lang;
use marginalia::notify::links::{Claims, ModerationAction, Purpose, sign};
use marginalia::store::Store;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::*;
use crate::smtp_server::{ReceivedMail, SmtpServer};

/// A form post from a browser without JavaScript, in `accept_language`.
async fn post_form(app: &TestApp, accept_language: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/api/comments"))
        .header("accept", "text/html,application/xhtml+xml")
        .header("accept-language", accept_language)
        .form(fields)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_form_post_in_german_gets_the_german_success_page() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let response = post_form(
            &app,
            "de-DE,de;q=0.9,en;q=0.8",
            &[
                ("uri", "/formular/"),
                ("name", "Jonas"),
                ("email", "jonas@example.org"),
                ("body", "Ohne JavaScript gesendet"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let page = response.text().await.unwrap();
        assert!(page.contains("<html lang=\"de\" dir=\"ltr\">"), "{page}");
        assert!(page.contains("<title>Kommentar erhalten</title>"), "{page}");
        assert!(
            page.contains("Vielen Dank. Ihr Kommentar wartet auf die Moderation."),
            "{page}"
        );
        assert!(!page.contains("awaiting moderation"), "{page}");
    })
    .await;
}

#[tokio::test]
async fn a_form_error_page_in_arabic_is_right_to_left() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let response = post_form(
            &app,
            "ar-EG",
            &[
                ("uri", "/form/"),
                ("name", "Layla"),
                ("email", "nope"),
                ("body", "مرحبا"),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = response.text().await.unwrap();
        assert!(page.contains("<html lang=\"ar\" dir=\"rtl\">"), "{page}");
        assert!(page.contains("<title>لم يتم إرسال التعليق</title>"), "{page}");
        assert!(
            page.contains("<strong>البريد الإلكتروني</strong>: أدخل عنوان بريد إلكتروني صالحًا."),
            "{page}"
        );
        assert!(
            app.admin_list("").await["comments"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn pages_without_a_usable_accept_language_use_marginalia_lang() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| config.lang = Lang::It).await;
        for accept_language in ["sw, xh;q=0.5", "*"] {
            let response = post_form(
                &app,
                accept_language,
                &[
                    ("uri", "/modulo/"),
                    ("name", "Giulia"),
                    ("email", "giulia@example.org"),
                    ("body", &format!("Inviato senza JavaScript ({accept_language})")),
                ],
            )
            .await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let page = response.text().await.unwrap();
            assert!(page.contains("<html lang=\"it\" dir=\"ltr\">"), "{page}");
            assert!(page.contains("<title>Commento ricevuto</title>"), "{page}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_moderation_link_page_speaks_french() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app
            .submit_with(json!({"uri": "/articles/ergo/", "name": "Camille", "body": "Très utile."}))
            .await;
        let store = Store::connect(app.database_url()).await.unwrap();
        let secret = store.link_secret().await.unwrap();
        let claims = Claims::new(
            Purpose::Moderate(ModerationAction::Approve),
            id,
            Email::parse("mod@clinic.example").unwrap(),
            time::OffsetDateTime::now_utc(),
            time::Duration::days(7),
        );
        let token = sign(&secret, &claims);
        let get = |path: String| {
            app.client
                .get(app.url(&path))
                .header("accept-language", "fr-CA,fr;q=0.9")
                .send()
        };
        let response = get(format!("/moderate/{token}")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["vary"], "accept-language");
        let page = response.text().await.unwrap();
        assert!(page.contains("<html lang=\"fr\" dir=\"ltr\">"), "{page}");
        assert!(page.contains("Approuver ce commentaire"), "{page}");
        assert!(
            page.contains("<dt>Statut actuel</dt><dd>en attente</dd>"),
            "{page}"
        );
        assert!(page.contains(">Approuver</button>"), "{page}");

        let refused = get("/moderate/not-a-token".to_owned()).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let page = refused.text().await.unwrap();
        assert!(page.contains("<h1>Ce lien n’est pas valide</h1>"), "{page}");
        assert!(page.contains("Rien n’a été modifié."), "{page}");
    })
    .await;
}

fn with_mail(config: &mut marginalia::config::Config, smtp: &SmtpServer, moderators: &[&str]) {
    config.smtp_url = Some(SecretString::from(format!(
        "smtp://127.0.0.1:{}?tls=none",
        smtp.port()
    )));
    config.mail_from = Some("Clinic blog <comments@clinic.example>".into());
    config.notify_emails = moderators.iter().map(|m| (*m).to_owned()).collect();
}

async fn next_mail(smtp: &mut SmtpServer) -> ReceivedMail {
    tokio::time::timeout(Duration::from_secs(20), smtp.next_mail())
        .await
        .expect("a mail arrives")
}

fn parsed(mail: &ReceivedMail) -> Message<'_> {
    MessageParser::default().parse(&mail.data).unwrap()
}

fn content_language<'a>(message: &'a Message<'_>) -> Option<&'a str> {
    message.header_raw("Content-Language").map(str::trim)
}

#[tokio::test]
async fn moderators_get_mail_in_marginalia_lang() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| {
            with_mail(config, &smtp, &["mod@clinic.example"]);
            config.lang = Lang::De;
        })
        .await;
        // The reader's page was Japanese; the moderator still reads German.
        app.submit_with(
            json!({"uri": "/ergotherapie/", "name": "Maya", "body": "Hallo zusammen", "lang": "ja"}),
        )
        .await;
        let mail = next_mail(&mut smtp).await;
        assert_eq!(mail.rcpt_to, ["mod@clinic.example"]);
        let message = parsed(&mail);
        assert_eq!(
            message.subject(),
            Some("[127.0.0.1] Neuer Kommentar von Maya zu /ergotherapie/ wartet auf Moderation")
        );
        assert_eq!(content_language(&message), Some("de"));
        let text = message.body_text(0).unwrap();
        assert!(text.contains("Freigeben: http://"), "{text}");
        assert!(text.contains("Warteschlange öffnen: http://"), "{text}");
        let html = message.body_html(0).unwrap();
        assert!(html.contains("<html lang=\"de\" dir=\"ltr\">"), "{html}");
    })
    .await;
}

/// The link in a mail's text whose address contains `path`.
fn link_in(text: &str, path: &str) -> String {
    let word = text
        .split_whitespace()
        .find(|word| word.contains(path))
        .expect("the link is in the mail");
    word[word.find("http").expect("an absolute link")..].to_owned()
}

#[tokio::test]
async fn readers_get_mail_in_the_language_their_page_sent() {
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, &smtp, &[])).await;
        let parent = app
            .submit_with(json!({
                "uri": "/kiji/",
                "name": "Haruto",
                "email": "haruto@example.org",
                "body": "返信を待っています。",
                "notify": true,
                "lang": "ja-JP",
            }))
            .await;
        let mail = next_mail(&mut smtp).await;
        assert_eq!(mail.rcpt_to, ["haruto@example.org"]);
        let message = parsed(&mail);
        assert_eq!(content_language(&message), Some("ja"));
        assert_eq!(
            message.subject(),
            Some("[127.0.0.1] /kiji/ へのコメントへの返信をメールで受け取るかどうか確認してください")
        );
        let text = message.body_text(0).unwrap().into_owned();
        assert!(text.contains("返信を受け取ることを確認する: http://"), "{text}");
        let html = message.body_html(0).unwrap();
        assert!(html.contains("<html lang=\"ja\" dir=\"ltr\">"), "{html}");
        assert!(html.contains(">はい、返信を送ってください</a>"), "{html}");

        // Confirmed, published, answered in English: the reply mail goes to
        // the parent's author in the parent's language.
        let confirm = link_in(&text, "/subscribe/");
        let confirmed = app
            .client
            .post(&confirm)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(confirmed.status(), StatusCode::OK);
        assert_eq!(app.moderate(parent, "approve").await.status(), StatusCode::OK);
        let reply = app
            .submit_with(json!({
                "uri": "/kiji/",
                "parent_id": parent,
                "name": "Emma",
                "email": "emma@example.org",
                "body": "Here is my answer.",
                "lang": "en",
            }))
            .await;
        assert_eq!(app.moderate(reply, "approve").await.status(), StatusCode::OK);
        let mail = next_mail(&mut smtp).await;
        assert_eq!(mail.rcpt_to, ["haruto@example.org"]);
        let message = parsed(&mail);
        assert_eq!(content_language(&message), Some("ja"));
        assert_eq!(
            message.subject(),
            Some("[127.0.0.1] /kiji/ のあなたのコメントに Emma さんから新しい返信があります")
        );
        let text = message.body_text(0).unwrap();
        assert!(text.contains("Here is my answer."), "{text}");
        assert!(
            text.contains("このスレッドへの返信の通知を停止: http://"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_page_language_is_checked_and_kept_for_moderators() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for bad in [json!("english please"), json!("x".repeat(40)), json!(7)] {
            let mut comment = valid_comment();
            merge(&mut comment, json!({"lang": bad}));
            let response = app.post_json(&comment).await;
            let body = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
            let fields: Vec<&String> = body["fields"].as_object().unwrap().keys().collect();
            assert_eq!(fields, ["lang"], "{body}");
        }
        assert!(
            app.admin_list("").await["comments"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        let id = app.submit_with(json!({"uri": "/lang/", "lang": "pt-br"})).await;
        let without = app.submit_with(json!({"uri": "/lang/"})).await;
        let listed = app.admin_list("uri=/lang/").await;
        let lang_of = |id: i64| {
            listed["comments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == id)
                .unwrap()["lang"]
                .clone()
        };
        assert_eq!(lang_of(id), json!("pt-BR"));
        assert_eq!(lang_of(without), json!(null));
        // The public view has no such field: the thread's JSON is language-neutral.
        assert_eq!(app.moderate(id, "approve").await.status(), StatusCode::OK);
        let thread = app.thread("/lang/").await;
        assert!(thread["comments"][0].get("lang").is_none(), "{thread}");
    })
    .await;
}

#[test]
fn an_unknown_marginalia_lang_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("marginalia.db");
    for bad in ["xx", "klingon", "sw"] {
        let output = serve_with(
            &[("MARGINALIA_LANG", bad)],
            &format!("sqlite://{}", path.display()),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad}: started anyway");
        assert!(stderr.contains("MARGINALIA_LANG"), "{bad}: {stderr}");
        assert!(stderr.contains(&format!("`{bad}`")), "{bad}: {stderr}");
        assert!(!path.exists(), "{bad}: the database was created");
    }
}
