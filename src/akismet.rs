//! Akismet, with feedback: each new comment is checked with Akismet's
//! documented `comment-check` call after it is stored and acknowledged, and a
//! moderator who overrides a verdict is reported back with `submit-ham` /
//! `submit-spam`. Off unless `MARGINALIA_AKISMET_KEY` is set.
//!
//! Owns the HTTP client (reqwest over rustls, every call bounded by the
//! configured timeout), the form every call sends (every field Akismet
//! documents that we have), the reading of its answers, and the supervised
//! **checker** that works through the checks. It calls the store, and the
//! `comments` use cases for what follows a status change; `outbox` calls
//! [`Client::send_feedback`] for the feedback deliveries.
//!
//! # Durability and order
//!
//! A submission's transaction writes an `akismet_checks` row with the comment
//! (`store::Writing::check_akismet`), so a check survives a crash or an
//! Akismet outage; the submission's answer never waits for Akismet. The
//! checker claims due rows (a lease, `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), asks Akismet with [`TRIES`] quick tries, and records the
//! verdict in one transaction: `true` moves a still-pending comment to spam
//! with the shared moderation statement (reason `akismet`, `moderated_by`
//! `auto:akismet`, its event going through the outbox like any status
//! change); `false` leaves it pending; no usable answer leaves it pending
//! too, with reason `akismet_unavailable`. Comments the rules (`spam`)
//! already sent to spam or published are not checked.
//!
//! Moderators are not mailed about a comment Akismet is about to call spam:
//! the outbox's dispatcher leaves a submission's event alone while its check
//! is due, for at most [`Client::mail_wait`] (every try and its pause, plus a
//! tick), then mails anyway; a check that moves the comment to spam drops the
//! submission's event, and only the spam event remains (webhooks hear of it).
//!
//! # Feedback
//!
//! A person's moderation that overrides a verdict (approving what Akismet
//! called spam, marking as spam what it passed) queues an outbox delivery in
//! the moderation's transaction (`store`'s `queue_akismet_feedback!`); the
//! outbox's sender sends it with the outbox's retry schedule. The fields are
//! read when it is sent, so the delivery holds nothing but the comment's id.
//!
//! # The key at start-up
//!
//! [`start`] calls `verify-key` once. A key Akismet answers `invalid` for
//! stops start-up with a message saying so: every check would fail, silently
//! to readers, loudly only in the log. An Akismet that cannot be reached does
//! not: a third party's outage must not keep the comment service down (the
//! checks wait in the database and are retried).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use time::format_description::well_known::Rfc3339;

use crate::comments;
use crate::config::{AkismetSettings, Site};
use crate::domain::{Comment, CommentId};
use crate::i18n::Lang;
use crate::state::AppState;
use crate::store::{AkismetCheck, AkismetVerdict, DeliveryKind, Store, StoreError};
use crate::tasks::{CancellationToken, Supervisor};

/// Who the log and `moderated_by` name when Akismet moves a comment.
pub const MODERATOR: &str = "auto:akismet";

/// The name of the widget's and the form's honeypot field
/// (`routes::submission::HONEYPOT_FIELD`, a test keeps them equal; not
/// imported, as `routes` depends on `outbox`, which depends on this), sent
/// as `honeypot_field_name` with its value: always empty here, since a
/// comment whose honeypot was filled is spam by our own rule and never
/// asked about.
pub const HONEYPOT_FIELD_NAME: &str = "homepage";

/// Tries of one check before it counts as unavailable.
pub const TRIES: u32 = 3;
/// The pause before each retry (quick: the moderators' mail waits for it).
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(250), Duration::from_secs(1)];
const _: () = assert!(
    RETRY_PAUSES.len() + 1 == TRIES as usize,
    "a pause before every retry"
);
/// How often the checker looks for checks.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Checks claimed and made at once (concurrently).
const CHECKS_PER_CLAIM: u32 = 16;
/// How long a claim is held: longer than a claim's checks can take (they
/// run together; each at most 3 × 30 s, the largest timeout, plus pauses).
const CLAIM_LEASE: time::Duration = time::Duration::minutes(2);
/// A check claimed this many times without a recorded verdict (instances
/// dying mid-check) is recorded as unavailable instead of tried again.
const MAX_CLAIMS: u32 = 5;

/// Akismet's success answer to `submit-ham` / `submit-spam`.
const THANKS: &str = "Thanks for making the web a better place.";

/// Why a call gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no answer within the timeout")]
    Timeout,
    #[error("request failed: {0}")]
    Transport(String),
    #[error("Akismet answered HTTP {0}")]
    Status(u16),
    /// `invalid` (a bad key or missing field) or any other body.
    #[error("Akismet answered `{body}` ({})", debug_help.as_deref().unwrap_or("no X-akismet-debug-help"))]
    Unexpected {
        body: String,
        debug_help: Option<String>,
    },
}

/// The blog every call describes.
#[derive(Debug, Clone)]
struct Blog {
    /// `SITE_URL`, as configured.
    url: String,
    /// The blog's language in Akismet's spelling (`en`, `pt_br`).
    lang: String,
    honeypot_field_name: &'static str,
}

/// Akismet's API, for one blog.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    key: SecretString,
    /// The API base without a trailing slash.
    base: String,
    timeout: Duration,
    blog: Blog,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never in a log line.
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the blog at `site`, in `lang`.
    pub fn new(settings: &AkismetSettings, site: &Site, lang: Lang) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // Akismet asks clients to name themselves.
            .user_agent(concat!(
                "marginalia/",
                env!("CARGO_PKG_VERSION"),
                " | marginalia-akismet/",
                env!("CARGO_PKG_VERSION")
            ))
            // A fixed endpoint: a redirect would carry readers' data elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the Akismet client")?;
        Ok(Self {
            http,
            key: settings.key.clone(),
            base: settings.url.as_str().trim_end_matches('/').to_owned(),
            timeout: settings.timeout,
            blog: Blog {
                url: site.site_url.as_str().to_owned(),
                lang: akismet_lang(lang),
                honeypot_field_name: HONEYPOT_FIELD_NAME,
            },
        })
    }

    /// How long the dispatcher holds a submission's moderator mail back for
    /// its check: every try with its pause, plus a tick of the checker and
    /// one of slack. A check that takes longer (a backlog) no longer holds
    /// the mail; it still happens.
    pub fn mail_wait(&self) -> Duration {
        self.timeout * TRIES + RETRY_PAUSES.iter().sum::<Duration>() + POLL_INTERVAL * 2
    }

    /// The form of `comment-check`, `submit-spam` and `submit-ham` for a
    /// stored comment: every field Akismet documents that we have.
    pub fn form(&self, comment: &Comment, referrer: Option<&str>) -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = Vec::with_capacity(18);
        let mut put = |name: &str, value: &str| form.push((name.to_owned(), value.to_owned()));
        put("api_key", self.key.expose_secret());
        put("blog", &self.blog.url);
        put("user_ip", comment.ip.as_deref().unwrap_or_default());
        if let Some(agent) = &comment.user_agent {
            put("user_agent", agent);
        }
        if let Some(referrer) = referrer {
            put("referrer", referrer);
        }
        put(
            "permalink",
            &format!("{}{}", self.blog.url.trim_end_matches('/'), comment.uri),
        );
        put(
            "comment_type",
            if comment.parent_id.is_some() {
                "reply"
            } else {
                "comment"
            },
        );
        put("comment_author", &comment.name);
        put("comment_author_email", &comment.email);
        if let Some(website) = &comment.website {
            put("comment_author_url", website);
        }
        // The text as the reader wrote it (Markdown), not our rendering.
        put("comment_content", &comment.body);
        let date = comment
            .created_at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default();
        put("comment_date_gmt", &date);
        put("blog_lang", &self.blog.lang);
        put("blog_charset", "UTF-8");
        put("honeypot_field_name", self.blog.honeypot_field_name);
        put(self.blog.honeypot_field_name, "");
        form
    }

    /// One `comment-check`: `true` is spam, `false` is not; anything else
    /// (`invalid`, another body, an error status, no answer) is an error.
    pub async fn comment_check(&self, form: &[(String, String)]) -> Result<bool, CallError> {
        // `call` has checked that the body is `true` or `false`.
        let (body, pro_tip) = self.call("comment-check", form).await?;
        if pro_tip.as_deref() == Some("discard") {
            tracing::debug!("Akismet calls this blatant spam (pro tip: discard)");
        }
        Ok(body == "true")
    }

    /// A check with [`TRIES`] tries: Akismet's verdict, or `Unavailable`.
    pub async fn check(&self, comment_id: CommentId, form: &[(String, String)]) -> AkismetVerdict {
        for attempt in 1..=TRIES {
            match self.comment_check(form).await {
                Ok(true) => return AkismetVerdict::Spam,
                Ok(false) => return AkismetVerdict::Ham,
                Err(error) => {
                    tracing::warn!(id = comment_id, attempt, error = %error, "Akismet check failed");
                    if let Some(pause) = RETRY_PAUSES.get(attempt as usize - 1) {
                        tokio::time::sleep(*pause).await;
                    }
                }
            }
        }
        AkismetVerdict::Unavailable
    }

    /// Sends one feedback delivery (`payload`: the comment's id). A comment
    /// deleted meanwhile has nothing left to report: done.
    pub async fn send_feedback(
        &self,
        store: &Store,
        kind: DeliveryKind,
        payload: &[u8],
    ) -> Result<(), String> {
        let endpoint = match kind {
            DeliveryKind::AkismetHam => "submit-ham",
            DeliveryKind::AkismetSpam => "submit-spam",
            other => return Err(format!("`{}` is not an Akismet delivery", other.as_str())),
        };
        let id: CommentId = std::str::from_utf8(payload)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| "the delivery does not name a comment".to_owned())?;
        let record = store
            .akismet_record(id)
            .await
            .map_err(|error| format!("reading the comment: {error}"))?;
        let Some(record) = record else {
            tracing::info!(id, endpoint, "Akismet feedback dropped: the comment is gone");
            return Ok(());
        };
        let form = self.form(&record.comment, record.referrer.as_deref());
        self.call(endpoint, &form)
            .await
            .map(|_| ())
            .map_err(|error| error.to_string())
    }

    /// `verify-key`: true when Akismet calls the key valid.
    pub async fn verify_key(&self) -> Result<bool, CallError> {
        let form = vec![
            ("api_key".to_owned(), self.key.expose_secret().to_owned()),
            ("blog".to_owned(), self.blog.url.clone()),
        ];
        match self.call("verify-key", &form).await {
            Ok(_) => Ok(true),
            Err(CallError::Unexpected { body, .. }) if body == "invalid" => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// POSTs `form` to `endpoint` and returns the body when it is one the
    /// endpoint documents as an answer (`true`/`false`, `valid`, the thanks
    /// of a submission), with Akismet's `X-akismet-pro-tip` if any.
    async fn call(
        &self,
        endpoint: &str,
        form: &[(String, String)],
    ) -> Result<(String, Option<String>), CallError> {
        let body = serde_urlencoded::to_string(form)
            .map_err(|error| CallError::Transport(format!("encoding the form: {error}")))?;
        let response = self
            .http
            .post(format!("{}/{endpoint}", self.base))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let debug_help = header("x-akismet-debug-help");
        let pro_tip = header("x-akismet-pro-tip");
        let text = response.text().await.map_err(classify)?;
        if !status.is_success() {
            return Err(CallError::Status(status.as_u16()));
        }
        let answer = text.trim();
        let expected = match endpoint {
            "comment-check" => matches!(answer, "true" | "false"),
            "verify-key" => answer == "valid",
            _ => answer == THANKS,
        };
        if expected {
            Ok((answer.to_owned(), pro_tip))
        } else {
            Err(CallError::Unexpected {
                body: answer.chars().take(200).collect(),
                debug_help,
            })
        }
    }
}

/// A request error without its URL (it holds nothing secret, but keep log
/// lines short and alike).
fn classify(error: reqwest::Error) -> CallError {
    if error.is_timeout() {
        CallError::Timeout
    } else {
        CallError::Transport(error.without_url().to_string())
    }
}

/// Akismet spells languages as ISO 639-1 codes with an optional region
/// after an underscore (`en`, `fr_ca`).
fn akismet_lang(lang: Lang) -> String {
    lang.tag().replace('-', "_").to_ascii_lowercase()
}

/// Verifies the key and starts the checker under `supervisor`; nothing
/// without a key. Fails when Akismet calls the key invalid.
pub async fn start(state: Arc<AppState>, supervisor: &mut Supervisor) -> anyhow::Result<()> {
    let Some(settings) = &state.akismet else {
        return Ok(());
    };
    let client = Client::new(settings, &state.site, state.lang)?;
    match client.verify_key().await {
        Ok(true) => tracing::info!("Akismet key verified; new comments are checked with Akismet"),
        Ok(false) => anyhow::bail!(
            "MARGINALIA_AKISMET_KEY: Akismet answered `invalid` to verify-key for the blog {}; \
             check the key and MARGINALIA_SITE_URL (or unset the key to run without Akismet)",
            client.blog.url
        ),
        Err(error) => tracing::warn!(
            error = %error,
            "could not verify the Akismet key now; starting anyway (checks are retried, \
             comments stay in the queue meanwhile)"
        ),
    }
    let client = Arc::new(client);
    supervisor.spawn("akismet checker", |stop| run(state, client, stop));
    Ok(())
}

/// Checks what is due every [`POLL_INTERVAL`] until `stop`.
async fn run(state: Arc<AppState>, client: Arc<Client>, stop: CancellationToken) {
    // One process per SQLite file: a claim still held is this process's
    // from before it stopped; take it back rather than wait out its lease.
    if matches!(state.store, Store::Sqlite(_))
        && let Err(error) = state.store.release_akismet_claims().await
    {
        tracing::warn!(error = %error, "could not take back the previous run's Akismet claims");
    }
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = check_due(&state, &client).await {
            tracing::warn!(error = %error, "Akismet step failed; retrying at the next tick");
        }
    }
}

/// Claims due checks, makes them together, records each verdict.
pub async fn check_due(state: &AppState, client: &Client) -> Result<(), StoreError> {
    loop {
        let checks = state
            .store
            .claim_akismet_checks(CHECKS_PER_CLAIM, CLAIM_LEASE)
            .await?;
        if checks.is_empty() {
            return Ok(());
        }
        let count = checks.len();
        let ids: Vec<CommentId> = checks.iter().map(|check| check.comment_id).collect();
        let comments = state.store.comments_by_ids(&ids).await?;
        let verdicts = futures_util::future::join_all(
            checks
                .iter()
                .filter_map(|check| Some((check, comments.get(&check.comment_id)?)))
                .map(|(check, comment)| verdict(client, check, comment)),
        )
        .await;
        for (id, verdict) in verdicts {
            let moved = state.store.record_akismet_verdict(id, verdict, MODERATOR).await?;
            tracing::info!(id, verdict = verdict.as_str(), "Akismet verdict");
            if let Some(moved) = moved {
                comments::after_moderation(state, &moved, MODERATOR);
            }
        }
        if count < CHECKS_PER_CLAIM as usize {
            return Ok(());
        }
    }
}

async fn verdict(client: &Client, check: &AkismetCheck, comment: &Comment) -> (CommentId, AkismetVerdict) {
    if check.attempts > MAX_CLAIMS {
        tracing::warn!(
            id = comment.id,
            "Akismet check claimed too often; recorded as unavailable"
        );
        return (comment.id, AkismetVerdict::Unavailable);
    }
    let form = client.form(comment, check.referrer.as_deref());
    (comment.id, client.check(comment.id, &form).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_honeypot_named_to_akismet_is_the_forms() {
        assert_eq!(HONEYPOT_FIELD_NAME, crate::routes::submission::HONEYPOT_FIELD);
    }

    #[test]
    fn languages_are_spelt_the_way_akismet_documents() {
        assert_eq!(akismet_lang(Lang::En), "en");
        assert_eq!(akismet_lang(Lang::PtBr), "pt_br");
        assert_eq!(akismet_lang(Lang::ZhHans), "zh_hans");
    }

    #[test]
    fn the_client_never_prints_its_key() {
        let settings = AkismetSettings {
            key: SecretString::from("very-secret-key"),
            url: url::Url::parse("https://rest.akismet.com/1.1/").unwrap(),
            timeout: Duration::from_secs(5),
        };
        let site = Site {
            public_url: url::Url::parse("https://comments.example").unwrap(),
            site_url: url::Url::parse("https://blog.example").unwrap(),
            name: "blog".into(),
        };
        let client = Client::new(&settings, &site, Lang::En).unwrap();
        let printed = format!("{client:?}");
        assert!(!printed.contains("very-secret-key"), "{printed}");
        assert_eq!(client.base, "https://rest.akismet.com/1.1");
        // Three tries of five seconds, the pauses, two ticks.
        assert_eq!(client.mail_wait(), Duration::from_millis(15_000 + 1_250 + 2_000));
    }
}
