//! Each newtype's `parse` on arbitrary text: it accepts exactly what the contract (openapi.yaml)
//! allows (where the contract says exactly what that is) and what it holds keeps
//! every rule.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marginalia::domain::{AuthorName, Email, ThreadUri, Website};
use marginalia_fuzz::has_control;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let input = input.as_ref();
    let trimmed = input.trim();

    // uri: starts with '/', ≤ 500 chars, no whitespace or control; kept exactly.
    let uri_ok = input.starts_with('/')
        && input.chars().count() <= ThreadUri::MAX_CHARS
        && !input.chars().any(|c| c.is_whitespace() || c.is_control());
    match ThreadUri::parse(input) {
        Ok(uri) => {
            assert!(uri_ok, "uri accepted: {input:?}");
            assert_eq!(uri.as_str(), input);
        }
        Err(message) => assert!(!uri_ok, "uri refused ({message}): {input:?}"),
    }

    // name: trimmed, 1–80 chars, no control chars.
    let name_ok =
        !trimmed.is_empty() && trimmed.chars().count() <= AuthorName::MAX_CHARS && !has_control(trimmed, &[]);
    match AuthorName::parse(input) {
        Ok(name) => {
            assert!(name_ok, "name accepted: {input:?}");
            assert_eq!(name.as_str(), trimmed);
        }
        Err(message) => assert!(!name_ok, "name refused ({message}): {input:?}"),
    }

    // email: trimmed, then a valid address of ≤ 254 chars. "Valid" is the
    // validator crate's call; what any valid address must be is checked here.
    if let Ok(email) = Email::parse(input) {
        let address = email.as_str();
        assert_eq!(address, trimmed);
        assert!(address.chars().count() <= Email::MAX_CHARS, "{address:?}");
        assert!(!has_control(address, &[]), "{address:?}");
        let (local, domain) = address
            .rsplit_once('@')
            .unwrap_or_else(|| panic!("no @ in {address:?}"));
        assert!(!local.is_empty() && !domain.is_empty(), "{address:?}");
        // An IP literal is the whole domain, never text followed by one.
        if domain.contains(['[', ']']) {
            assert!(domain.starts_with('[') && domain.ends_with(']'), "{address:?}");
        }
        assert!(!address.chars().any(char::is_whitespace), "{address:?}");
        assert!(!format!("{email:?}").contains(address), "Debug shows {address:?}");
    }

    // website: "" (after trimming) is absent; otherwise an absolute http(s)
    // URL of ≤ 500 chars, kept as given, with a host.
    let website_ok = trimmed.chars().count() <= Website::MAX_CHARS
        && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
        && Url::parse(trimmed).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|host| !host.is_empty())
        });
    match Website::parse_optional(input) {
        Ok(None) => assert!(trimmed.is_empty(), "website dropped: {input:?}"),
        Ok(Some(website)) => {
            assert!(website_ok, "website accepted: {input:?}");
            assert_eq!(website.as_str(), trimmed);
        }
        Err(message) => assert!(
            !trimmed.is_empty() && !website_ok,
            "website refused ({message}): {input:?}"
        ),
    }
});
