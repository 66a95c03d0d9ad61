//! Properties of the domain types and the sanitizer over arbitrary input
//! (proptest): whatever a reader types, the published HTML stays inside the
//! allow-list of the contract (openapi.yaml), sanitizing is idempotent, an accepted body shows
//! something, names show something and hold no bidirectional controls, and
//! the public view of a comment never carries its email.

use marginalia::domain::{AuthorName, CommentBody, Email, NewComment, ThreadUri, Website, render, sanitize};
use proptest::prelude::*;

#[path = "support/allow_list.rs"]
mod allow_list;

/// Parses `html` as a fragment and fails on anything outside the allow-list.
fn assert_within_allow_list(html: &str) -> Result<(), TestCaseError> {
    let violations = allow_list::allow_list_violations(html);
    prop_assert!(violations.is_empty(), "{:?} in {}", violations, html);
    Ok(())
}

/// True when `html`, parsed as a browser would, shows no visible character
/// (whitespace and the zero-width characters of the contract count as nothing).
fn shows_nothing(html: &str) -> bool {
    scraper::Html::parse_fragment(html)
        .root_element()
        .text()
        .all(|text| {
            text.chars()
                .all(|c| c.is_whitespace() || c.is_control() || ZERO_WIDTH.contains(&c))
        })
}

/// Characters that draw nothing, as the contract's examples name them.
const ZERO_WIDTH: [char; 7] = [
    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2060}', '\u{FEFF}',
];

/// The bidirectional embedding, override and isolate characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text mixing letters with zero-width characters, bidi controls and spaces.
fn tricky_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[a-zA-Zé ]{0,4}",
        prop::sample::select(ZERO_WIDTH.to_vec()).prop_map(String::from),
        prop::sample::select(vec![
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}'
        ])
        .prop_map(String::from),
        Just(" ".to_owned()),
        Just("/".to_owned()),
    ];
    prop::collection::vec(pieces, 0..10).prop_map(|parts| parts.concat())
}

/// Strings rich in the characters markup is made of.
fn markup_soup() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("=".to_owned()),
        Just("&".to_owned()),
        Just("/".to_owned()),
        Just("javascript:".to_owned()),
        Just("JaVaScRiPt:".to_owned()),
        Just("&#106;avascript:".to_owned()),
        Just("data:text/html,".to_owned()),
        Just("<script>".to_owned()),
        Just("</script>".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("<a href=".to_owned()),
        Just("[x](".to_owned()),
        Just(")".to_owned()),
        Just("<svg><style>".to_owned()),
        Just(" onclick=".to_owned()),
        Just(" style=".to_owned()),
        Just("\n> ".to_owned()),
        Just("\n- ".to_owned()),
        Just("```\n".to_owned()),
        Just("<!--".to_owned()),
        Just("-->".to_owned()),
        Just("<![CDATA[".to_owned()),
        "[a-z ]{0,8}",
        any::<String>(),
    ];
    prop::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn rendered_markdown_stays_within_the_allow_list(body in markup_soup()) {
        assert_within_allow_list(&render(&body))?;
    }

    #[test]
    fn arbitrary_html_is_sanitized_within_the_allow_list(html in markup_soup()) {
        assert_within_allow_list(&sanitize(&html))?;
    }

    #[test]
    fn sanitizing_is_idempotent(body in markup_soup()) {
        let once = render(&body);
        prop_assert_eq!(sanitize(&once), once);
    }

    #[test]
    fn every_accepted_body_is_trimmed_bounded_and_safe(body in markup_soup()) {
        if let Ok(parsed) = CommentBody::parse(&body) {
            prop_assert_eq!(parsed.markdown(), body.trim());
            prop_assert!(parsed.markdown().chars().count() <= marginalia::domain::MAX_BODY_CHARS);
            prop_assert!(parsed.html().len() <= marginalia::domain::MAX_BODY_HTML_BYTES);
            assert_within_allow_list(parsed.html())?;
            prop_assert!(!shows_nothing(parsed.html()), "accepted, but says nothing: {}", parsed.html());
        }
    }

    #[test]
    fn a_refused_body_is_refused_for_a_reason(body in markup_soup()) {
        if let Err(message) = CommentBody::parse(&body) {
            let trimmed = body.trim();
            let reason = trimmed.is_empty()
                || trimmed.chars().count() > marginalia::domain::MAX_BODY_CHARS
                || trimmed.chars().any(|c| c.is_control() && !['\t', '\r', '\n'].contains(&c))
                || marginalia::domain::nesting_depth(trimmed) > marginalia::domain::MAX_BODY_NESTING
                || render(trimmed).len() > marginalia::domain::MAX_BODY_HTML_BYTES
                || shows_nothing(&render(trimmed));
            prop_assert!(reason, "refused without reason ({}): {:?}", message, body);
        }
    }

    #[test]
    fn names_uris_and_websites_never_hold_bidi_controls_and_names_show_something(
        value in tricky_text(),
    ) {
        match AuthorName::parse(&value) {
            Ok(name) => {
                prop_assert!(!name.as_str().chars().any(is_bidi_control));
                prop_assert!(name.as_str().chars().any(|c| !c.is_whitespace() && !ZERO_WIDTH.contains(&c)));
            }
            Err(_) => prop_assert!(
                value.chars().any(is_bidi_control)
                    || value.chars().all(|c| c.is_whitespace() || ZERO_WIDTH.contains(&c))
                    || value.trim().chars().count() > 80,
                "name refused without reason: {:?}", value
            ),
        }
        let path = format!("/{value}");
        if let Ok(uri) = ThreadUri::parse(&path) {
            prop_assert!(!uri.as_str().chars().any(is_bidi_control));
        }
        if let Ok(Some(website)) = Website::parse_optional(&format!("https://a.example/{value}")) {
            prop_assert!(!website.as_str().chars().any(is_bidi_control));
        }
    }

    #[test]
    fn names_and_uris_never_hold_control_characters(value in any::<String>()) {
        if let Ok(name) = AuthorName::parse(&value) {
            prop_assert!(!name.as_str().chars().any(char::is_control));
            prop_assert!((1..=80).contains(&name.as_str().chars().count()));
        }
        if let Ok(uri) = ThreadUri::parse(&value) {
            prop_assert!(uri.as_str().starts_with('/'));
            prop_assert!(!uri.as_str().chars().any(|c| c.is_control() || c.is_whitespace()));
        }
    }

    #[test]
    fn a_website_is_always_an_absolute_http_url(value in prop_oneof![any::<String>(), markup_soup()]) {
        if let Ok(Some(website)) = Website::parse_optional(&value) {
            let url = url::Url::parse(website.as_str()).unwrap();
            prop_assert!(matches!(url.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn the_public_view_never_carries_the_email(
        local in "[a-z0-9._%+-]{1,20}",
        domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}",
        body in markup_soup(),
    ) {
        let address = format!("{local}@{domain}");
        let (Ok(email), Ok(body)) = (Email::parse(&address), CommentBody::parse(&format!("x{body}"))) else {
            return Ok(());
        };
        let submission = NewComment {
            uri: ThreadUri::parse("/p/").unwrap(),
            parent_id: None,
            name: AuthorName::parse("Reader").unwrap(),
            email,
            website: None,
            body,
            ip: None,
            user_agent: None,
            wants_replies: false,
            lang: None,
            referrer: None,
        };
        let stored = marginalia::domain::Comment {
            id: 1,
            uri: submission.uri.as_str().to_owned(),
            parent_id: None,
            name: submission.name.as_str().to_owned(),
            email: submission.email.as_str().to_owned(),
            website: None,
            body: submission.body.markdown().to_owned(),
            body_html: submission.body.html().to_owned(),
            status: marginalia::domain::Status::Approved,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            moderated_at: None,
            moderated_by: None,
            ip: None,
            user_agent: None,
            lang: None,
        };
        let public = serde_json::to_string(&stored.to_public(false)).unwrap();
        // The body may quote the address itself; the point is the field.
        if !submission.body.markdown().contains(&address) {
            prop_assert!(!public.contains(&address), "{}", public);
        }
        prop_assert!(!public.contains("\"email\""));
    }
}
