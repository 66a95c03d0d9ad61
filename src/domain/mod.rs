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
mod status;
mod thread_uri;
mod website;

pub use author_name::AuthorName;
pub use comment::{Comment, CommentId, NewComment, PublicComment};
pub use comment_body::{
    CommentBody, MAX_BODY_CHARS, MAX_BODY_HTML_BYTES, MAX_BODY_NESTING, nesting_depth, render, sanitize,
};
pub use email::Email;
pub use status::Status;
pub use thread_uri::ThreadUri;
pub use website::Website;

/// True when `value` holds a control character other than those in `allowed`.
fn has_control_chars(value: &str, allowed: &[char]) -> bool {
    value.chars().any(|c| c.is_control() && !allowed.contains(&c))
}
