//! The commenter's optional website link.

use std::fmt;

use url::Url;

/// An absolute `http`/`https` URL of at most 500 characters, without
/// bidirectional controls (kept as sent, they would make the link display as
/// another address). `""` in a request
/// means "no website", which callers express as `Option::<Website>::None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Website(String);

impl Website {
    pub const MAX_CHARS: usize = 500;

    /// Parses an optional website: blank means absent.
    pub fn parse_optional(value: &str) -> Result<Option<Self>, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        Self::parse(trimmed).map(Some)
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        if value.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        // The URL parser silently strips tabs and newlines; refuse them instead of
        // storing something other than what was sent.
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must be an absolute http or https URL".into());
        }
        if super::has_bidi_controls(value) {
            return Err(super::BIDI_CONTROL_MESSAGE.into());
        }
        let url = Url::parse(value).map_err(|_| "must be an absolute http or https URL")?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !has_plain_host(value)
        {
            return Err("must be an absolute http or https URL".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether the URL as written names its host the way openapi.yaml's
/// `WebsiteInput` pattern states: `http(s)://`, dot-separated labels of
/// letters (ASCII, or any from U+00A1 to U+FFFF for international names),
/// digits and `-`, the last one starting with a letter, an optional port of
/// 1–5 digits, then `/`, `?`, `#` or the end. The URL parser alone accepts
/// more (`*` or `_` in a host, user info, IP addresses), which the contract
/// never promised and HTTP fuzzing sent.
fn has_plain_host(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) => {
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            host
        }
        None => authority,
    };
    let in_label = |c: char| c.is_ascii_alphanumeric() || c == '-' || ('\u{a1}'..='\u{ffff}').contains(&c);
    let letter = |c: char| c.is_ascii_alphabetic() || ('\u{a1}'..='\u{ffff}').contains(&c);
    let labels: Vec<&str> = host.split('.').collect();
    labels
        .iter()
        .all(|label| !label.is_empty() && label.chars().all(in_label))
        && labels
            .last()
            .and_then(|last| last.chars().next())
            .is_some_and(letter)
}

impl fmt::Display for Website {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Website;

    #[test]
    fn blank_means_absent() {
        assert_eq!(Website::parse_optional(""), Ok(None));
        assert_eq!(Website::parse_optional("  "), Ok(None));
    }

    #[test]
    fn http_and_https_urls_are_kept_as_given() {
        let site = Website::parse_optional("https://ada.example/blog?x=1")
            .unwrap()
            .unwrap();
        assert_eq!(site.as_str(), "https://ada.example/blog?x=1");
        assert!(Website::parse("http://ada.example").is_ok());
    }

    #[test]
    fn other_schemes_and_relative_links_are_refused() {
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,hi",
            "ftp://ada.example",
            "/relative",
            "ada.example",
            "https://",
            "https://ada.example/\nx",
        ] {
            assert!(Website::parse_optional(bad).is_err(), "{bad:?}");
        }
    }

    /// Found when the service was tried as an attacker would.
    #[test]
    fn bidi_overrides_and_isolates_are_refused() {
        for bad in [
            "https://ada.example/\u{202E}gpj.exe",
            "https://\u{2067}ada.example/",
            "https://ada.example/?q=\u{202D}",
        ] {
            let refused = Website::parse_optional(bad).unwrap_err();
            assert!(refused.contains("bidirectional"), "{bad:?}: {refused}");
        }
    }

    /// Found by HTTP fuzzing: the URL parser takes `*` in a host.
    #[test]
    fn hosts_outside_the_documented_pattern_are_refused() {
        for bad in [
            "http://wl-.8w4.p-u2*",
            "https://ada_lovelace.example/",
            "https://user@ada.example/",
            "https://127.0.0.1/",
            "https://ada.example:123456/",
            "https://ada..example/",
        ] {
            assert!(Website::parse(bad).is_err(), "{bad:?}");
        }
        for good in [
            "HtTpS://Ada.Example:8080/x?y#z",
            "https://b\u{fc}cher.example/",
            "http://localhost",
            "https://ada.example?q",
        ] {
            assert!(Website::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn five_hundred_characters_is_the_limit() {
        let base = "https://ada.example/";
        let ok = format!("{base}{}", "a".repeat(500 - base.len()));
        assert!(Website::parse(&ok).is_ok());
        assert!(Website::parse(&format!("{ok}a")).is_err());
    }
}
