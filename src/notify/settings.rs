//! The notification settings, resolved once at start-up from the raw option
//! values (`MARGINALIA_SMTP_URL`, `MARGINALIA_MAIL_FROM`,
//! `MARGINALIA_NOTIFY_EMAILS`, `MARGINALIA_NOTIFY_PER_HOUR`,
//! `MARGINALIA_LINK_TTL`, `MARGINALIA_WEBHOOK_URLS`,
//! `MARGINALIA_WEBHOOK_SECRET`, `MARGINALIA_WEBHOOK_FORMAT`).
//!
//! Every value and every combination is checked here, so a configuration that
//! could not deliver what it asks for stops start-up with a message naming the
//! variable, instead of failing silently at the first comment. Messages never
//! repeat a password, a webhook secret or a webhook URL (chat webhook URLs are
//! credentials themselves).

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::smtp::{MAIL_FROM_VAR, MailSettings, SMTP_URL_VAR};
use super::webhook::WebhookFormat;
use crate::domain::Email;

/// The environment variable of the moderators' addresses, named in errors.
pub const NOTIFY_EMAILS_VAR: &str = "MARGINALIA_NOTIFY_EMAILS";
/// The environment variable of the hourly mail budget, named in errors.
pub const NOTIFY_PER_HOUR_VAR: &str = "MARGINALIA_NOTIFY_PER_HOUR";
/// The environment variable of the link lifetime, named in errors.
pub const LINK_TTL_VAR: &str = "MARGINALIA_LINK_TTL";
/// The environment variable of the webhook receivers, named in errors.
pub const WEBHOOK_URLS_VAR: &str = "MARGINALIA_WEBHOOK_URLS";
/// The environment variable of the webhook signing key, named in errors.
pub const WEBHOOK_SECRET_VAR: &str = "MARGINALIA_WEBHOOK_SECRET";
/// The environment variable of the webhook body format, named in errors.
pub const WEBHOOK_FORMAT_VAR: &str = "MARGINALIA_WEBHOOK_FORMAT";

/// The longest accepted `MARGINALIA_LINK_TTL`: a link older than a year is
/// one nobody should still be able to act with.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// The option values as given, before any check. An empty or blank value
/// means "not set", as an empty environment variable does elsewhere.
pub struct NotifyOptions<'a> {
    pub smtp_url: Option<&'a SecretString>,
    pub mail_from: Option<&'a str>,
    pub notify_emails: &'a [String],
    pub notify_per_hour: u32,
    pub link_ttl: &'a str,
    pub webhook_urls: &'a [String],
    pub webhook_secret: Option<&'a SecretString>,
    pub webhook_format: &'a str,
}

/// Validated notification settings, kept in the application state.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// Where and as whom mail is sent; `None` when no SMTP server is set up.
    pub mail: Option<MailSettings>,
    /// The moderators told about each comment entering the queue.
    pub moderator_emails: Vec<Email>,
    /// Individual moderator mails per hour; beyond it, one digest per hour.
    pub per_hour: NonZeroU32,
    /// How long a one-click link works.
    pub link_ttl: Duration,
    /// Where events are POSTed; `None` when no receiver is set up.
    pub webhooks: Option<WebhookSettings>,
}

/// The webhook receivers, the signing key and the body format.
#[derive(Clone)]
pub struct WebhookSettings {
    pub urls: Vec<Url>,
    pub secret: SecretString,
    pub format: WebhookFormat,
}

impl fmt::Debug for WebhookSettings {
    /// Redacted: both the URLs (chat webhooks carry their token in the path)
    /// and the key are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("urls", &format_args!("<{} redacted>", self.urls.len()))
            .field("secret", &"<redacted>")
            .field("format", &self.format)
            .finish()
    }
}

impl NotifySettings {
    /// True when anything is to be delivered at all (mail or webhooks): only
    /// then do submissions write notification events.
    pub fn is_enabled(&self) -> bool {
        self.mail.is_some() || self.webhooks.is_some()
    }

    /// Checks every value and combination; the error names the variable.
    pub fn resolve(options: &NotifyOptions<'_>) -> anyhow::Result<Self> {
        let smtp_url = options
            .smtp_url
            .map(|url| url.expose_secret().trim())
            .filter(|url| !url.is_empty());
        let mail_from = options.mail_from.map(str::trim).filter(|from| !from.is_empty());
        let mail = match (smtp_url, mail_from) {
            (Some(url), Some(from)) => Some(MailSettings::parse(url, from)?),
            (Some(_), None) => {
                anyhow::bail!("{MAIL_FROM_VAR} is required when {SMTP_URL_VAR} is set")
            }
            (None, _) => None,
        };

        let moderator_emails = parse_emails(options.notify_emails)?;
        if !moderator_emails.is_empty() && mail.is_none() {
            anyhow::bail!("{NOTIFY_EMAILS_VAR} is set but {SMTP_URL_VAR} is not: no mail can be sent");
        }

        let per_hour = NonZeroU32::new(options.notify_per_hour)
            .ok_or_else(|| anyhow::anyhow!("{NOTIFY_PER_HOUR_VAR} must be at least 1"))?;
        let link_ttl =
            parse_link_ttl(options.link_ttl).map_err(|why| anyhow::anyhow!("{LINK_TTL_VAR}: {why}"))?;

        let format = options
            .webhook_format
            .trim()
            .parse::<WebhookFormat>()
            .map_err(|why| anyhow::anyhow!("{WEBHOOK_FORMAT_VAR}: {why}"))?;
        let urls = parse_webhook_urls(options.webhook_urls)?;
        let secret = options
            .webhook_secret
            .filter(|secret| !secret.expose_secret().trim().is_empty());
        let webhooks = match (urls.is_empty(), secret) {
            (true, _) => None,
            (false, Some(secret)) => Some(WebhookSettings {
                urls,
                secret: secret.clone(),
                format,
            }),
            (false, None) => anyhow::bail!(
                "{WEBHOOK_SECRET_VAR} is required when {WEBHOOK_URLS_VAR} is set \
                 (receivers verify each call with it)"
            ),
        };

        Ok(Self {
            mail,
            moderator_emails,
            per_hour,
            link_ttl,
            webhooks,
        })
    }
}

fn parse_emails(entries: &[String]) -> anyhow::Result<Vec<Email>> {
    entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            Email::parse(entry).map_err(|why| anyhow::anyhow!("{NOTIFY_EMAILS_VAR}: `{entry}` {why}"))
        })
        .collect()
}

/// Each entry an absolute http(s) URL with a host. The URL itself is never
/// repeated in the message, only its position.
fn parse_webhook_urls(entries: &[String]) -> anyhow::Result<Vec<Url>> {
    entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            let position = index + 1;
            let expected = "is not an absolute http or https URL";
            let url = Url::parse(entry)
                .map_err(|_| anyhow::anyhow!("{WEBHOOK_URLS_VAR}: entry {position} {expected}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
                anyhow::bail!("{WEBHOOK_URLS_VAR}: entry {position} {expected}");
            }
            Ok(url)
        })
        .collect()
}

/// `30s`, `15m`, `12h` or `7d`: a whole number and a unit, more than zero and
/// at most [`MAX_LINK_TTL`].
pub fn parse_link_ttl(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let expected = format!("`{value}` is not a duration such as 30s, 15m, 12h or 7d");
    let Some(unit) = value.chars().last() else {
        return Err(expected);
    };
    let seconds_per_unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => return Err(expected),
    };
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(expected);
    }
    let too_long = || format!("`{value}` is longer than the 365 days allowed");
    let count = digits.parse::<u64>().map_err(|_| too_long())?;
    let seconds = count.checked_mul(seconds_per_unit).ok_or_else(too_long)?;
    let ttl = Duration::from_secs(seconds);
    if ttl.is_zero() {
        return Err("must be more than zero".into());
    }
    if ttl > MAX_LINK_TTL {
        return Err(too_long());
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Raw {
        smtp_url: Option<SecretString>,
        mail_from: Option<String>,
        notify_emails: Vec<String>,
        notify_per_hour: u32,
        link_ttl: String,
        webhook_urls: Vec<String>,
        webhook_secret: Option<SecretString>,
        webhook_format: String,
    }

    impl Default for Raw {
        fn default() -> Self {
            Self {
                smtp_url: None,
                mail_from: None,
                notify_emails: Vec::new(),
                notify_per_hour: 10,
                link_ttl: "7d".into(),
                webhook_urls: Vec::new(),
                webhook_secret: None,
                webhook_format: "json".into(),
            }
        }
    }

    impl Raw {
        fn resolve(&self) -> anyhow::Result<NotifySettings> {
            NotifySettings::resolve(&NotifyOptions {
                smtp_url: self.smtp_url.as_ref(),
                mail_from: self.mail_from.as_deref(),
                notify_emails: &self.notify_emails,
                notify_per_hour: self.notify_per_hour,
                link_ttl: &self.link_ttl,
                webhook_urls: &self.webhook_urls,
                webhook_secret: self.webhook_secret.as_ref(),
                webhook_format: &self.webhook_format,
            })
        }

        fn error(&self) -> String {
            self.resolve().unwrap_err().to_string()
        }
    }

    fn secret(value: &str) -> Option<SecretString> {
        Some(SecretString::from(value.to_owned()))
    }

    fn mailing() -> Raw {
        Raw {
            smtp_url: secret("smtp://ada:hunter2@mail.example:587"),
            mail_from: Some("Clinic blog <comments@clinic.example>".into()),
            notify_emails: vec![
                "mod@clinic.example".into(),
                " ".into(),
                "other@clinic.example".into(),
            ],
            ..Raw::default()
        }
    }

    #[test]
    fn the_defaults_send_nothing_and_keep_links_a_week() {
        let settings = Raw::default().resolve().unwrap();
        assert!(settings.mail.is_none());
        assert!(settings.moderator_emails.is_empty());
        assert!(settings.webhooks.is_none());
        assert_eq!(settings.per_hour.get(), 10);
        assert_eq!(settings.link_ttl, Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn full_mail_settings_resolve() {
        let settings = mailing().resolve().unwrap();
        let mail = settings.mail.unwrap();
        assert_eq!(mail.host, "mail.example");
        assert_eq!(mail.from.email.to_string(), "comments@clinic.example");
        let emails: Vec<_> = settings.moderator_emails.iter().map(Email::as_str).collect();
        assert_eq!(emails, ["mod@clinic.example", "other@clinic.example"]);
    }

    #[test]
    fn a_bad_smtp_url_or_from_names_its_variable_without_the_password() {
        let error = Raw {
            smtp_url: secret("http://ada:hunter2@mail.example"),
            ..mailing()
        }
        .error();
        assert!(error.contains(SMTP_URL_VAR), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let error = Raw {
            mail_from: Some("not an address".into()),
            ..mailing()
        }
        .error();
        assert!(error.contains(MAIL_FROM_VAR), "{error}");
    }

    #[test]
    fn smtp_without_a_from_address_is_refused() {
        for from in [None, Some("  ".to_owned())] {
            let error = Raw {
                mail_from: from,
                ..mailing()
            }
            .error();
            assert!(error.contains(MAIL_FROM_VAR), "{error}");
            assert!(error.contains("required"), "{error}");
        }
    }

    #[test]
    fn an_empty_smtp_url_means_unset() {
        let settings = Raw {
            smtp_url: secret(" "),
            mail_from: Some("a@b.example".into()),
            ..Raw::default()
        }
        .resolve()
        .unwrap();
        assert!(settings.mail.is_none());
    }

    #[test]
    fn moderator_addresses_without_smtp_are_refused() {
        let error = Raw {
            notify_emails: vec!["mod@clinic.example".into()],
            ..Raw::default()
        }
        .error();
        assert!(error.contains(NOTIFY_EMAILS_VAR), "{error}");
        assert!(error.contains("no mail can be sent"), "{error}");
    }

    #[test]
    fn each_moderator_address_must_be_valid() {
        let error = Raw {
            notify_emails: vec!["mod@clinic.example".into(), "not-an-address".into()],
            ..mailing()
        }
        .error();
        assert!(error.contains(NOTIFY_EMAILS_VAR), "{error}");
        assert!(error.contains("not-an-address"), "{error}");
    }

    #[test]
    fn the_hourly_budget_is_at_least_one() {
        let error = Raw {
            notify_per_hour: 0,
            ..Raw::default()
        }
        .error();
        assert!(error.contains(NOTIFY_PER_HOUR_VAR), "{error}");
        let settings = Raw {
            notify_per_hour: 1,
            ..Raw::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(settings.per_hour.get(), 1);
    }

    #[test]
    fn link_ttls_take_a_unit_and_stay_within_a_year() {
        assert_eq!(parse_link_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_link_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_link_ttl(" 12h "), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_link_ttl("365d"), Ok(MAX_LINK_TTL));
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "-1d",
            "+1d",
            "1.5h",
            "7 d",
            "0s",
            "0d",
            "366d",
            "8761h",
            "99999999999999999999d",
            "18446744073709551615d",
            "7д",
        ] {
            assert!(parse_link_ttl(bad).is_err(), "{bad} accepted");
        }
        let error = Raw {
            link_ttl: "0s".into(),
            ..Raw::default()
        }
        .error();
        assert!(error.contains(LINK_TTL_VAR), "{error}");
    }

    #[test]
    fn webhooks_need_absolute_http_urls_and_a_secret() {
        let hooks = Raw {
            webhook_urls: vec![
                "https://hooks.slack.example/T0/B0/XYZ".into(),
                "http://127.0.0.1:9/in".into(),
            ],
            webhook_secret: secret("whsec-long-enough"),
            webhook_format: "slack".into(),
            ..Raw::default()
        };
        let webhooks = hooks.resolve().unwrap().webhooks.unwrap();
        assert_eq!(webhooks.urls.len(), 2);
        assert_eq!(webhooks.format, WebhookFormat::Slack);
        let shown = format!("{webhooks:?}");
        assert!(!shown.contains("XYZ") && !shown.contains("whsec"), "{shown}");

        for bad in [
            "hooks.example/in",
            "ftp://hooks.example/in",
            "/in",
            "mailto:a@b.example",
        ] {
            let error = Raw {
                webhook_urls: vec![bad.into()],
                ..hooks.clone()
            }
            .error();
            assert!(error.contains(WEBHOOK_URLS_VAR), "{bad}: {error}");
            assert!(!error.contains(bad), "{bad} repeated: {error}");
        }
        for missing in [None, secret("")] {
            let error = Raw {
                webhook_secret: missing,
                ..hooks.clone()
            }
            .error();
            assert!(error.contains(WEBHOOK_SECRET_VAR), "{error}");
        }
    }

    #[test]
    fn the_webhook_format_is_one_of_three() {
        for (name, format) in [
            ("json", WebhookFormat::Json),
            ("slack", WebhookFormat::Slack),
            ("discord", WebhookFormat::Discord),
        ] {
            let settings = Raw {
                webhook_urls: vec!["https://hooks.example/in".into()],
                webhook_secret: secret("key"),
                webhook_format: name.into(),
                ..Raw::default()
            }
            .resolve()
            .unwrap();
            assert_eq!(settings.webhooks.unwrap().format, format);
        }
        // Checked even with no receiver, so a typo shows before it matters.
        let error = Raw {
            webhook_format: "teams".into(),
            ..Raw::default()
        }
        .error();
        assert!(error.contains(WEBHOOK_FORMAT_VAR), "{error}");
    }
}
