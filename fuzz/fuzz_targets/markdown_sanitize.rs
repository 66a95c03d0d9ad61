//! Arbitrary text as a comment body, as Markdown and as raw HTML: whatever
//! comes out must stay inside the contract's allow-list, survive a second
//! sanitizing unchanged, and respect the 64 KiB limit on rendered HTML.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marginalia::domain::{render, sanitize};
use marginalia_fuzz::{assert_idempotent, assert_within_allow_list, check_comment_body};

fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 never reaches the domain (the JSON and form parsers refuse
    // it), so the bytes are read lossily rather than thrown away.
    let input = String::from_utf8_lossy(data);

    // The path of a submitted body: trim, limits, Markdown, sanitizer.
    check_comment_body(&input);

    // The renderer on its own, also for text the limits would refuse.
    let html = render(&input);
    assert_within_allow_list(&html);
    assert_idempotent(&html);

    // The sanitizer on its own, with the input as raw HTML.
    let html = sanitize(&input);
    assert_within_allow_list(&html);
    assert_idempotent(&html);
});
