//! The commenter's email address: kept for moderators, never published.

use std::fmt;

use validator::ValidateEmail;

/// A trimmed, valid email address of at most 254 characters.
///
/// It deliberately implements neither `Serialize` nor `Display`, so it cannot
/// slip into a public response by accident; the moderator view asks for it by
/// name with [`Email::as_str`].
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(value: &str) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        if super::has_control_chars(trimmed, &[]) || !trimmed.validate_email() {
            return Err("must be a valid email address".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    /// Redacted, so that a logged record never carries the address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn valid_addresses_are_trimmed() {
        assert_eq!(
            Email::parse(" ada@example.org ").unwrap().as_str(),
            "ada@example.org"
        );
    }

    #[test]
    fn invalid_addresses_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada example@x.org",
            "ada@exa\0mple.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_over_254_characters_are_refused() {
        let long = format!("{}@{}.org", "a".repeat(64), "b".repeat(200));
        assert!(long.chars().count() > 254);
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn debug_output_hides_the_address() {
        let email = Email::parse("secret@example.org").unwrap();
        assert!(!format!("{email:?}").contains("secret"));
    }
}
