//! The commenter's display name: plain text, never HTML.

use std::fmt;

/// A trimmed name of 1–80 characters with at least one visible character, no
/// control characters and no bidirectional controls. It is plain text:
/// whoever renders it must escape it (the JSON API carries it verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorName(String);

impl AuthorName {
    pub const MAX_CHARS: usize = 80;

    pub fn parse(value: &str) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if super::has_control_chars(trimmed, &[]) {
            return Err("must not contain control characters".into());
        }
        if super::has_bidi_controls(trimmed) {
            return Err(super::BIDI_CONTROL_MESSAGE.into());
        }
        // Zero-width spaces, joiners, fillers: a name nobody can see is no name.
        if trimmed.chars().all(super::is_invisible) {
            return Err("is required (it has no visible character)".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuthorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::AuthorName;

    #[test]
    fn names_are_trimmed() {
        assert_eq!(
            AuthorName::parse("  Ada Lovelace \n").unwrap().as_str(),
            "Ada Lovelace"
        );
    }

    #[test]
    fn empty_and_blank_names_are_refused() {
        assert!(AuthorName::parse("").is_err());
        assert!(AuthorName::parse(" \t ").is_err());
    }

    /// Found when the service was tried as an attacker would.
    #[test]
    fn names_made_only_of_invisible_characters_are_refused() {
        for invisible in [
            "\u{200B}",
            "\u{FEFF}\u{200B}",
            "\u{200C}\u{200D}",
            "\u{2060}",
            " \u{200E}\u{200F} ",
            "\u{3164}",
            "\u{E0041}\u{E0064}",
        ] {
            let refused = AuthorName::parse(invisible).unwrap_err();
            assert!(refused.contains("visible"), "{invisible:?}: {refused}");
        }
        // Joiners and marks inside a visible name are writing, not tricks.
        assert!(AuthorName::parse("\u{0627}\u{200F}\u{0628}").is_ok());
        assert!(AuthorName::parse("👩\u{200D}💻 Ada").is_ok());
    }

    /// Found when the service was tried as an attacker would.
    #[test]
    fn bidi_overrides_and_isolates_are_refused() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}',
        ] {
            let refused = AuthorName::parse(&format!("Ada{c}ecalevol")).unwrap_err();
            assert!(refused.contains("bidirectional"), "{c:?}: {refused}");
        }
    }

    #[test]
    fn eighty_characters_is_the_limit() {
        assert!(AuthorName::parse(&"ß".repeat(80)).is_ok());
        assert!(AuthorName::parse(&"ß".repeat(81)).is_err());
    }

    #[test]
    fn control_characters_are_refused_and_html_is_kept_as_text() {
        assert!(AuthorName::parse("Ada\0").is_err());
        assert!(AuthorName::parse("Ada\u{7}Lovelace").is_err());
        assert_eq!(
            AuthorName::parse("<b>Ada</b>").unwrap().as_str(),
            "<b>Ada</b>",
            "a name is text; escaping is the renderer's job"
        );
    }
}
