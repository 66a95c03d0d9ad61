//! The commenter's display name: plain text, never HTML.

use std::fmt;

/// A trimmed name of 1–80 characters with no control characters. It is plain
/// text: whoever renders it must escape it (the JSON API carries it verbatim).
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
