//! The comment's parts as types that can only hold valid values ("parse, don't
//! validate"): once a handler holds a [`CommentBody`], it is sanitized by
//! construction; once it holds an [`Email`], it is a valid address.
//!
//! Every `parse` returns the message a reader sees next to the field, so the
//! HTTP layer only has to say which field it was.

mod author_name;
mod comment;
mod comment_body;
mod email;
mod language_tag;
mod status;
mod thread_state;
mod thread_uri;
mod website;

pub use author_name::AuthorName;
pub use comment::{
    Comment, CommentId, ImportedComment, NewComment, PublicComment, Reasons, SpamClue, SpamClues,
};
pub use comment_body::{
    CommentBody, MAX_BODY_CHARS, MAX_BODY_HTML_BYTES, MAX_BODY_NESTING, has_visible_text, nesting_depth,
    render, sanitize,
};
pub use email::Email;
pub use language_tag::LanguageTag;
pub use status::Status;
pub use thread_state::ThreadState;
pub use thread_uri::ThreadUri;
pub use website::Website;

/// True when `value` holds a control character other than those in `allowed`.
fn has_control_chars(value: &str, allowed: &[char]) -> bool {
    value.chars().any(|c| c.is_control() && !allowed.contains(&c))
}

/// What a field holding a bidirectional control is told.
const BIDI_CONTROL_MESSAGE: &str =
    "must not contain bidirectional embedding, override or isolate characters (U+202A–U+202E, U+2066–U+2069)";

/// True when `value` holds a bidirectional embedding, override or isolate
/// character (U+202A–U+202E, U+2066–U+2069). They reorder the text that
/// follows them, so a name, a link or a path can display as something other
/// than what it is. The marks U+200E, U+200F and U+061C, which right-to-left
/// names legitimately use, are not among them.
fn has_bidi_controls(value: &str) -> bool {
    value
        .chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// True for a character that draws nothing by itself: whitespace, controls,
/// zero-width spaces, joiners and marks, the byte-order mark, bidirectional
/// controls, variation selectors, tag characters, and the blank "filler"
/// letters of Hangul and Braille. Text made only of these reads as empty.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_told_from_visible_ones() {
        for c in [
            ' ',
            '\u{00A0}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{202E}',
            '\u{2067}',
            '\u{200F}',
            '\u{3164}',
            '\u{E0041}',
        ] {
            assert!(is_invisible(c), "{:?}", c);
        }
        for c in ['a', 'é', 'ß', '中', 'ا', '😀', '.', '\u{0301}'] {
            assert!(!is_invisible(c), "{c:?}");
        }
    }

    #[test]
    fn only_embedding_override_and_isolate_characters_are_bidi_controls() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}',
        ] {
            assert!(has_bidi_controls(&format!("ab{c}cd")), "{c:?}");
        }
        for marks in ["\u{200E}", "\u{200F}", "\u{061C}", "plain", "\u{2029}\u{206A}"] {
            assert!(!has_bidi_controls(marks), "{marks:?}");
        }
    }
}
