//! The language a reader's page was in, sent with a submission (`lang`), so
//! that mail to that reader speaks it.

use std::fmt;

use icu_locale_core::Locale;

/// A well-formed BCP 47 language tag (`de`, `pt-BR`, `zh-Hans-CN`) of at
/// most 35 characters, kept in its canonical case (`pt-br` → `pt-BR`).
///
/// Any well-formed tag is accepted, supported or not: a widget on a Swahili
/// page sends `sw`, and that must not cost the reader their comment. Which
/// language mail then uses is decided when it is written (`i18n::Lang`
/// falls back by truncation, then to the configured language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageTag(String);

/// What a malformed tag is told.
const MALFORMED: &str = "must be a BCP 47 language tag such as en, de-AT or zh-Hans";

impl LanguageTag {
    /// RFC 5646 asks implementations to keep tags of at least 35 characters;
    /// longer ones are private-use curiosities no browser sends.
    pub const MAX_CHARS: usize = 35;

    /// Parses an optional tag: blank means absent.
    pub fn parse_optional(value: &str) -> Result<Option<Self>, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        Self::parse(trimmed).map(Some)
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        // `pt_BR` is how POSIX locales and some systems write a tag: taken
        // as `pt-BR` rather than costing the reader a 422.
        let locale = Locale::try_from_str(&trimmed.replace('_', "-")).map_err(|_| MALFORMED.to_owned())?;
        Ok(Self(locale.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_tags_are_kept_in_canonical_case() {
        for (sent, kept) in [
            ("de", "de"),
            (" pt-br ", "pt-BR"),
            ("pt_BR", "pt-BR"),
            ("ZH-hans-cn", "zh-Hans-CN"),
            ("sw", "sw"),
            ("en-US-u-ca-gregory", "en-US-u-ca-gregory"),
        ] {
            assert_eq!(LanguageTag::parse(sent).unwrap().as_str(), kept, "{sent:?}");
        }
        assert_eq!(LanguageTag::parse_optional("  ").unwrap(), None);
    }

    #[test]
    fn malformed_or_overlong_tags_are_refused() {
        for bad in ["english please", "de--AT", "-de", "12", "<script>", "de@AT", "a"] {
            let error = LanguageTag::parse(bad).unwrap_err();
            assert!(error.contains("BCP 47"), "{bad:?}: {error}");
        }
        let long = format!("en-{}", ["abcdefgh"; 4].join("-"));
        assert!(long.len() > LanguageTag::MAX_CHARS);
        assert!(LanguageTag::parse(&long).unwrap_err().contains("at most 35"));
    }
}
