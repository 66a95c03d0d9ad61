//! The moderator calls about notifications: what is configured (never a
//! password, key or webhook URL: chat webhook URLs are credentials) and a
//! test mail a moderator sends themself to check the settings. Both need a
//! moderator, like every `/api/admin/*` call.

use std::sync::Arc;

use bytes::Bytes;
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use super::filters::{limited_body, moderator, require_json, strict_json, with_state};
use super::{json_response, method_not_allowed};
use crate::auth::Moderator;
use crate::domain::Email;
use crate::error::{ApiError, FieldErrors, respond};
use crate::notify::smtp::Security;
use crate::outbox;
use crate::state::AppState;

/// GET /api/admin/notifications and POST /api/admin/notifications/test.
pub fn routes(state: Arc<AppState>) -> BoxedFilter<(Response,)> {
    let show = warp::path!("api" / "admin" / "notifications").and(
        warp::get()
            .and(with_state(state.clone()))
            .and(moderator(state.clone()))
            .then(show_settings)
            .map(respond)
            .or(method_not_allowed("GET, HEAD"))
            .unify(),
    );
    let test = warp::path!("api" / "admin" / "notifications" / "test").and(
        warp::post()
            .and(with_state(state.clone()))
            .and(moderator(state))
            .and(warp::header::headers_cloned())
            .and(limited_body())
            .then(send_test_mail)
            .map(respond)
            .or(method_not_allowed("POST"))
            .unify(),
    );
    show.or(test).unify().boxed()
}

/// What the moderation page shows of the notification settings.
#[derive(Serialize)]
struct Settings {
    mail: Option<MailView>,
    /// Who is mailed about each comment entering the queue.
    moderators: Vec<String>,
    per_hour: u32,
    link_ttl_seconds: u64,
    webhooks: Option<WebhookView>,
}

#[derive(Serialize)]
struct MailView {
    /// `host:port` of the SMTP server.
    server: String,
    /// `starttls`, `tls` or `none`.
    security: &'static str,
    authenticated: bool,
    from: String,
}

#[derive(Serialize)]
struct WebhookView {
    /// The receivers' hosts only: their paths carry chat services' tokens.
    hosts: Vec<String>,
    format: String,
}

async fn show_settings(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
) -> Result<Response, ApiError> {
    moderator?;
    let notify = &state.notify;
    let settings = Settings {
        mail: notify.mail.as_ref().map(|mail| MailView {
            server: format!("{}:{}", mail.host, mail.port),
            security: match mail.security {
                Security::StartTls => "starttls",
                Security::ImplicitTls => "tls",
                Security::None => "none",
            },
            authenticated: mail.credentials.is_some(),
            from: mail.from.to_string(),
        }),
        moderators: notify
            .moderator_emails
            .iter()
            .map(|email| email.as_str().to_owned())
            .collect(),
        per_hour: notify.per_hour.get(),
        link_ttl_seconds: notify.link_ttl.as_secs(),
        webhooks: notify.webhooks.as_ref().map(|webhooks| WebhookView {
            hosts: webhooks
                .urls
                .iter()
                .map(|url| url.host_str().unwrap_or_default().to_owned())
                .collect(),
            format: format!("{:?}", webhooks.format).to_lowercase(),
        }),
    };
    Ok(json_response(&settings, StatusCode::OK))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestMail {
    to: String,
}

/// POST /api/admin/notifications/test {"to": "address"}: queues a test mail
/// (202); it goes out through the outbox like every other mail, so the
/// moderation page's figures and `/metrics` show whether it was delivered.
async fn send_test_mail(
    state: Arc<AppState>,
    moderator: Result<Moderator, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let moderator = moderator?;
    require_json(&headers)?;
    let request: TestMail = serde_json::from_value(strict_json(&body?)?)
        .map_err(|_| ApiError::BadRequest("send {\"to\": \"address\"} as JSON".into()))?;
    let email = Email::parse(&request.to).map_err(|message| {
        let mut errors = FieldErrors::new();
        errors.insert("to", message);
        ApiError::Validation(errors)
    })?;
    let to: Mailbox = email
        .as_str()
        .parse()
        .map_err(|_| ApiError::BadRequest("`to` is not an address mail can be sent to".into()))?;
    let queued = outbox::queue_test_mail(&state, to)
        .await
        .map_err(|error| match error {
            outbox::QueueError::Store(error) => ApiError::from(error),
            outbox::QueueError::Compose(error) => ApiError::Internal(error.into()),
        })?;
    if !queued {
        return Err(ApiError::Conflict {
            code: "mail_not_configured",
            message: "no SMTP server is configured: set MARGINALIA_SMTP_URL and MARGINALIA_MAIL_FROM".into(),
        });
    }
    tracing::info!(moderator = %moderator.name, "test mail queued");
    Ok(json_response(&json!({"queued": true}), StatusCode::ACCEPTED))
}
