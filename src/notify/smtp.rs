//! The SMTP settings and the transport built from them.
//!
//! `MARGINALIA_SMTP_URL` takes one of three forms:
//!
//! | form | connection |
//! | --- | --- |
//! | `smtp://USER:PASS@HOST[:PORT]` | STARTTLS, required (port 587 unless given) |
//! | `smtps://USER:PASS@HOST[:PORT]` | TLS from the first byte (port 465 unless given) |
//! | `smtp://HOST:PORT?tls=none` | plain SMTP, nothing encrypted: loopback test servers and trusted local relays |
//!
//! Credentials are optional and percent-decoded (`p%40ss` is `p@ss`). Plain SMTP
//! carries credentials only to a loopback host, where nothing can overhear them.
//! Certificates are checked against the platform's trust store.
//!
//! lettre's own `from_url` is not used: it reads `smtp://HOST` as plain SMTP on
//! port 25 and offers an opportunistic mode that a man in the middle can
//! downgrade, while here encryption is what you get unless you ask otherwise.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

/// The environment variable of the SMTP server's URL, named in errors.
pub const SMTP_URL_VAR: &str = "MARGINALIA_SMTP_URL";
/// The environment variable of the From address, named in errors.
pub const MAIL_FROM_VAR: &str = "MARGINALIA_MAIL_FROM";

/// How long one SMTP command may take before the delivery counts as failed
/// (and is retried later): a hung server must not hold the sender forever.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS; refused if the server cannot.
    StartTls,
    /// TLS from the first byte ("SMTPS", implicit TLS).
    ImplicitTls,
    /// No encryption at all, only when the URL says `tls=none`.
    None,
}

/// A user name and password for SMTP AUTH.
#[derive(Clone)]
pub struct SmtpCredentials {
    pub user: String,
    pub password: SecretString,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Validated mail settings: where to send and as whom.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<SmtpCredentials>,
    /// The From of every message.
    pub from: Mailbox,
}

/// A setting that cannot be used; the message names the variable and says
/// why, without repeating a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailSettingsError {
    #[error("{SMTP_URL_VAR}: {0}")]
    SmtpUrl(String),
    #[error("{MAIL_FROM_VAR}: {0}")]
    MailFrom(String),
}

impl MailSettings {
    /// Parses the values of `MARGINALIA_SMTP_URL` and `MARGINALIA_MAIL_FROM`.
    pub fn parse(smtp_url: &str, mail_from: &str) -> Result<Self, MailSettingsError> {
        let endpoint = parse_smtp_url(smtp_url).map_err(MailSettingsError::SmtpUrl)?;
        let from = parse_mail_from(mail_from).map_err(MailSettingsError::MailFrom)?;
        Ok(Self {
            host: endpoint.host,
            port: endpoint.port,
            security: endpoint.security,
            credentials: endpoint.credentials,
            from,
        })
    }

    /// The transport to share for every message: it keeps a pool of as many
    /// connections as the outbox sends at once. Nothing is connected yet.
    pub fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailSettingsError> {
        let tls = match self.security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(self.tls_parameters()?),
            Security::ImplicitTls => Tls::Wrapper(self.tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(super::SENDS_AT_ONCE as u32));
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(Credentials::new(
                credentials.user.clone(),
                credentials.password.expose_secret().to_owned(),
            ));
        }
        Ok(builder.build())
    }

    fn tls_parameters(&self) -> Result<TlsParameters, MailSettingsError> {
        TlsParameters::new(self.host.clone()).map_err(|error| {
            MailSettingsError::SmtpUrl(format!("cannot set up TLS for {}: {error}", self.host))
        })
    }
}

struct Endpoint {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<SmtpCredentials>,
}

const FORMS: &str = "expected smtp://USER:PASS@HOST:587 (STARTTLS), \
     smtps://USER:PASS@HOST:465 (TLS) or smtp://HOST:PORT?tls=none (unencrypted)";

fn parse_smtp_url(value: &str) -> Result<Endpoint, String> {
    // The parse error of the url crate never echoes the input, so a password
    // in a mistyped URL does not reach the log.
    let url = Url::parse(value.trim()).map_err(|error| format!("not a URL ({error}); {FORMS}"))?;
    let host = match url.host() {
        Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(format!("the URL names no host; {FORMS}")),
    };
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(format!("the URL must not have a path or fragment; {FORMS}"));
    }
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), tls) {
            ("tls", None) => tls = Some(value.into_owned()),
            ("tls", Some(_)) => return Err("tls is given twice".into()),
            (other, _) => {
                return Err(format!("unknown parameter {other:?}; the only one is tls=none"));
            }
        }
    }
    let security = match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("required")) => Security::StartTls,
        ("smtp", Some("none")) => Security::None,
        ("smtps", None) => Security::ImplicitTls,
        ("smtp", Some(other)) => {
            return Err(format!(
                "tls={other:?} is not supported: leave it out for STARTTLS, \
                 or say tls=none for an unencrypted connection"
            ));
        }
        ("smtps", Some(_)) => {
            return Err("smtps:// is always encrypted: remove the tls parameter".into());
        }
        (scheme, _) => return Err(format!("unknown scheme {scheme:?}; {FORMS}")),
    };
    let port = match (url.port(), security) {
        (Some(port), _) => port,
        (None, Security::ImplicitTls) => 465,
        (None, Security::StartTls) => 587,
        // No customary port: test servers and local relays listen anywhere.
        (None, Security::None) => {
            return Err("an unencrypted URL (tls=none) must give the port".into());
        }
    };
    let credentials = parse_credentials(&url)?;
    if credentials.is_some() && security == Security::None && !is_loopback(&host) {
        return Err(format!(
            "refusing to send the password unencrypted to {host}: \
             use smtp:// (STARTTLS) or smtps://, or a loopback host"
        ));
    }
    Ok(Endpoint {
        host,
        port,
        security,
        credentials,
    })
}

fn parse_credentials(url: &Url) -> Result<Option<SmtpCredentials>, String> {
    let decode = |part: &str, what: &str| {
        percent_decode(part).ok_or_else(|| format!("the {what} is not valid percent-encoded UTF-8"))
    };
    match (url.username(), url.password()) {
        ("", None) => Ok(None),
        ("", Some(_)) => Err("a password is given without a user name".into()),
        (_, None) => Err("a user name is given without a password (USER:PASS@HOST)".into()),
        (user, Some(password)) => Ok(Some(SmtpCredentials {
            user: decode(user, "user name")?,
            password: SecretString::from(decode(password, "password")?),
        })),
    }
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn parse_mail_from(value: &str) -> Result<Mailbox, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("is required when MARGINALIA_SMTP_URL is set (Name <address>)".into());
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let mailbox: Mailbox = value
        .parse()
        .map_err(|_| format!("{value:?} is not an address (expected Name <address>)"))?;
    // lettre's parser stops at the end of the first mailbox and ignores the
    // rest, so a second address or trailing text would vanish silently.
    if !is_whole_mailbox(value, &mailbox) {
        return Err(format!(
            "{value:?} must be exactly one address (expected Name <address>)"
        ));
    }
    Ok(mailbox)
}

/// True when `value` ends where `mailbox`'s address does: `address` alone, or
/// a name followed by `<address>`.
fn is_whole_mailbox(value: &str, mailbox: &Mailbox) -> bool {
    let address = mailbox.email.as_ref();
    if mailbox.name.is_none() {
        return value.eq_ignore_ascii_case(address)
            || value.strip_prefix('<').and_then(|v| v.strip_suffix('>')) == Some(address);
    }
    value
        .strip_suffix('>')
        .and_then(|rest| rest.trim_end().strip_suffix(address))
        .is_some_and(|rest| rest.trim_end().ends_with('<'))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::{MailSettings, MailSettingsError, Security};

    const FROM: &str = "Clinic blog <comments@clinic.example>";

    fn parse(url: &str) -> Result<MailSettings, MailSettingsError> {
        MailSettings::parse(url, FROM)
    }

    fn url_error(url: &str) -> String {
        match parse(url) {
            Err(MailSettingsError::SmtpUrl(message)) => message,
            other => panic!("{url}: expected an SMTP_URL error, got {other:?}"),
        }
    }

    #[test]
    fn smtp_means_starttls_required_on_587_by_default() {
        let settings = parse("smtp://mailer:hunter2@smtp.example.org").unwrap();
        assert_eq!(settings.security, Security::StartTls);
        assert_eq!(settings.port, 587);
        assert_eq!(settings.host, "smtp.example.org");
        let credentials = settings.credentials.unwrap();
        assert_eq!(credentials.user, "mailer");
        assert_eq!(credentials.password.expose_secret(), "hunter2");

        let explicit = parse("smtp://smtp.example.org:2525?tls=required").unwrap();
        assert_eq!((explicit.security, explicit.port), (Security::StartTls, 2525));
        assert!(explicit.credentials.is_none());
    }

    #[test]
    fn smtps_means_implicit_tls_on_465_by_default() {
        let settings = parse("smtps://u:p@smtp.example.org").unwrap();
        assert_eq!((settings.security, settings.port), (Security::ImplicitTls, 465));
        let other_port = parse("smtps://u:p@smtp.example.org:1465").unwrap();
        assert_eq!(other_port.port, 1465);
    }

    #[test]
    fn plain_smtp_only_when_asked_for_and_with_a_port() {
        let settings = parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((settings.security, settings.port), (Security::None, 2525));
        assert!(url_error("smtp://127.0.0.1?tls=none").contains("must give the port"));
        assert!(url_error("smtp://relay:25?tls=opportunistic").contains("not supported"));
        assert!(url_error("smtps://relay:465?tls=none").contains("always encrypted"));
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let settings = parse("smtps://me%40example.org:p%40ss%3Aw%2Fo%25rd%C3%A9@smtp.example.org").unwrap();
        let credentials = settings.credentials.unwrap();
        assert_eq!(credentials.user, "me@example.org");
        assert_eq!(credentials.password.expose_secret(), "p@ss:w/o%rdé");
        assert!(url_error("smtps://u:%FF%FE@smtp.example.org").contains("password"));
    }

    #[test]
    fn a_password_travels_unencrypted_only_to_loopback() {
        for loopback in [
            "smtp://u:p@127.0.0.1:2525?tls=none",
            "smtp://u:p@localhost:2525?tls=none",
            "smtp://u:p@[::1]:2525?tls=none",
        ] {
            let settings = parse(loopback).unwrap();
            assert!(settings.credentials.is_some(), "{loopback}");
        }
        assert_eq!(parse("smtp://u:p@[::1]:2525?tls=none").unwrap().host, "::1");
        assert!(url_error("smtp://u:p@mail.example.org:25?tls=none").contains("unencrypted"));
        assert!(parse("smtp://mail.example.org:25?tls=none").is_ok());
    }

    #[test]
    fn bad_urls_are_refused_with_a_message_naming_the_variable() {
        for bad in [
            "",
            "smtp.example.org",
            "smtp://",
            "http://smtp.example.org",
            "smtp://smtp.example.org/ehlo-name",
            "smtp://smtp.example.org?tls=none&tls=none",
            "smtp://smtp.example.org?timeout=5",
            "smtp://user@smtp.example.org",
            "smtp://:secret@smtp.example.org",
            "smtp://smtp.example.org:99999",
        ] {
            let error = parse(bad).unwrap_err();
            assert!(matches!(error, MailSettingsError::SmtpUrl(_)), "{bad}");
            assert!(error.to_string().starts_with("MARGINALIA_SMTP_URL: "), "{error}");
        }
    }

    #[test]
    fn errors_never_repeat_the_password() {
        for bad in [
            "smtp://u:sekrit-pw@mail.example.org:25?tls=none",
            "smtp://u:sekrit-pw@mail.example.org/path",
            "smtp://u:sekrit-pw@mail.example.org:notaport",
            "smtp://u:sekrit-pw@mail.example.org?x=1",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(!error.contains("sekrit-pw"), "{error}");
        }
        let settings = parse("smtp://u:sekrit-pw@mail.example.org").unwrap();
        assert!(!format!("{settings:?}").contains("sekrit-pw"));
    }

    #[test]
    fn the_from_address_must_be_one_valid_mailbox() {
        let settings = parse("smtp://smtp.example.org").unwrap();
        assert_eq!(settings.from.email.to_string(), "comments@clinic.example");
        assert_eq!(settings.from.name.as_deref(), Some("Clinic blog"));
        for good in [
            "comments@clinic.example",
            "<comments@clinic.example>",
            "\"Clinic, blog\" <comments@clinic.example>",
            "  Clinic blog <comments@clinic.example>  ",
        ] {
            assert!(MailSettings::parse("smtp://h", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Clinic blog",
            "Clinic blog <not an address>",
            "Clinic <a@clinic.example>, Other <b@clinic.example>",
            "Clinic <a@clinic.example> trailing",
            "a@clinic.example b@clinic.example",
            "Clinic\r\nBcc: x@evil.example <a@clinic.example>",
        ] {
            let error = MailSettings::parse("smtp://h", bad).unwrap_err();
            assert!(matches!(error, MailSettingsError::MailFrom(_)), "{bad:?}");
            assert!(error.to_string().starts_with("MARGINALIA_MAIL_FROM: "), "{error}");
        }
    }

    #[tokio::test]
    async fn a_transport_is_built_for_every_form_without_connecting() {
        for url in [
            "smtp://u:p@smtp.example.org",
            "smtps://u:p@smtp.example.org",
            "smtp://127.0.0.1:2525?tls=none",
        ] {
            assert!(parse(url).unwrap().transport().is_ok(), "{url}");
        }
    }
}
