//! The invariants the fuzz targets assert, shared between them.
//!
//! Each `check_*` panics (and so makes libFuzzer report a crash and save the
//! input) when the service breaks a promise of the contract (openapi.yaml) for that input.

use marginalia::domain::{
    CommentBody, MAX_BODY_CHARS, MAX_BODY_HTML_BYTES, MAX_BODY_NESTING, has_visible_text, nesting_depth,
    render, sanitize,
};

#[path = "../../tests/support/allow_list.rs"]
mod allow_list;

/// True for the control characters the contract (openapi.yaml) refuses (Rust's `char::is_control`).
pub fn has_control(value: &str, allowed: &[char]) -> bool {
    value.chars().any(|c| c.is_control() && !allowed.contains(&c))
}

/// Parses `html` as a fragment (as the widget's `innerHTML` would) and panics
/// on any element, attribute, comment or doctype outside the allow-list.
pub fn assert_within_allow_list(html: &str) {
    let violations = allow_list::allow_list_violations(html);
    assert!(violations.is_empty(), "{violations:?} in {html:?}");
}

/// Sanitized HTML must come out of the sanitizer unchanged. HTML over the
/// body limit is exempt: `sanitize` gives it one pass only (it is refused).
pub fn assert_idempotent(html: &str) {
    if html.len() > MAX_BODY_HTML_BYTES {
        return;
    }
    let again = sanitize(html);
    assert_eq!(again, html, "sanitizing again changed {html:?}");
}

/// Everything `CommentBody::parse` promises for `input`, in both directions:
/// an accepted body meets every rule, and a refused one breaks at least one.
pub fn check_comment_body(input: &str) -> Option<CommentBody> {
    let trimmed = input.trim();
    match CommentBody::parse(input) {
        Ok(body) => {
            assert_eq!(body.markdown(), trimmed, "the markdown is the trimmed input");
            let chars = trimmed.chars().count();
            assert!(
                (1..=MAX_BODY_CHARS).contains(&chars),
                "{chars} characters accepted"
            );
            assert!(
                !has_control(trimmed, &['\t', '\r', '\n']),
                "control character accepted"
            );
            let html = body.html();
            assert!(
                html.len() <= MAX_BODY_HTML_BYTES,
                "{} bytes of HTML accepted",
                html.len()
            );
            assert_eq!(html, render(trimmed), "the HTML is the rendering of the markdown");
            assert!(nesting_depth(trimmed) <= MAX_BODY_NESTING, "nesting too deep accepted");
            assert_within_allow_list(html);
            assert_idempotent(html);
            assert!(has_visible_text(html), "a body that says nothing accepted");
            Some(body)
        }
        Err(message) => {
            assert!(!message.is_empty());
            let justified = trimmed.is_empty()
                || trimmed.chars().count() > MAX_BODY_CHARS
                || has_control(trimmed, &['\t', '\r', '\n'])
                || nesting_depth(trimmed) > MAX_BODY_NESTING
                || render(trimmed).len() > MAX_BODY_HTML_BYTES
                || !has_visible_text(&render(trimmed));
            assert!(justified, "refused without reason ({message}): {input:?}");
            None
        }
    }
}
