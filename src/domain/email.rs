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
        if super::has_control_chars(trimmed, &[])
            || !trimmed.validate_email()
            || !ip_literal_is_whole(trimmed)
        {
            return Err("must be a valid email address".into());
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The validator crate matches an IP-literal domain with a pattern anchored
/// only at its end, so `ada@<anything>[::1]` passes it (found by `cargo fuzz`,
/// fuzz/README.md): a domain with a bracket must be that one literal, whole.
fn ip_literal_is_whole(address: &str) -> bool {
    let domain = address.rsplit_once('@').map_or(address, |(_, domain)| domain);
    if !domain.contains(['[', ']']) {
        return true;
    }
    domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|ip| ip.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'))
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

    /// Found by `cargo fuzz run domain_types`: text before an IP literal
    /// passed the validator crate's check.
    #[test]
    fn fuzz_an_ip_literal_must_be_the_whole_domain() {
        for bad in [
            "a@\u{2003}[d::1]",
            "a@<script>alert(1)</script>[::1]",
            "a@example.org[::1]",
            "a@x [127.0.0.1]",
            "a@[::1]x",
            "a@[::1",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["a@[::1]", "a@[127.0.0.1]", "a@example.org"] {
            assert!(Email::parse(good).is_ok(), "{good:?}");
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
