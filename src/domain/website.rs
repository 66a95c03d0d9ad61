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
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err("must be an absolute http or https URL".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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

    #[test]
    fn five_hundred_characters_is_the_limit() {
        let base = "https://ada.example/";
        let ok = format!("{base}{}", "a".repeat(500 - base.len()));
        assert!(Website::parse(&ok).is_ok());
        assert!(Website::parse(&format!("{ok}a")).is_err());
    }
}
