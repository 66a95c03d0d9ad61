//! The thread key: the blog page's path, used exactly as given.

use std::fmt;

/// A page's thread key: starts with `/`, at most 500 characters, no whitespace,
/// control or bidirectional control characters. Not normalized: `/a` and `/a/` are two threads, as the
/// blog chose them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadUri(String);

impl ThreadUri {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(value: &str) -> Result<Self, String> {
        if !value.starts_with('/') {
            return Err("must be a path starting with /".into());
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters".into());
        }
        if super::has_bidi_controls(value) {
            return Err(super::BIDI_CONTROL_MESSAGE.into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ThreadUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadUri;

    #[test]
    fn a_path_is_kept_exactly() {
        assert_eq!(
            ThreadUri::parse("/posts/1/?a=b").unwrap().as_str(),
            "/posts/1/?a=b"
        );
    }

    #[test]
    fn relative_or_absolute_urls_are_refused() {
        assert!(ThreadUri::parse("posts/1").is_err());
        assert!(ThreadUri::parse("https://blog.example/posts/1").is_err());
        assert!(ThreadUri::parse("").is_err());
    }

    #[test]
    fn whitespace_and_control_characters_are_refused() {
        for bad in ["/a b", "/a\tb", "/a\nb", "/a\0b", "/a\u{85}b", "/a\u{2003}b"] {
            assert!(ThreadUri::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Found when the service was tried as an attacker would.
    #[test]
    fn bidi_overrides_and_isolates_are_refused() {
        for bad in ["/a\u{202E}b/", "/\u{2066}x\u{2069}/", "/\u{202A}"] {
            let refused = ThreadUri::parse(bad).unwrap_err();
            assert!(refused.contains("bidirectional"), "{bad:?}: {refused}");
        }
        assert!(
            ThreadUri::parse("/\u{0627}\u{200F}/").is_ok(),
            "marks are allowed"
        );
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let at_limit = format!("/{}", "é".repeat(499));
        assert!(ThreadUri::parse(&at_limit).is_ok());
        let over = format!("/{}", "é".repeat(500));
        assert!(ThreadUri::parse(&over).is_err());
    }
}
