//! The comment text: Markdown in, sanitized HTML out.
//!
//! The raw Markdown is kept next to the HTML so that a future change of the
//! allow-list can re-render every stored comment.

use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::UrlRelative;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Longest accepted body, in Unicode scalar values, after trimming.
pub const MAX_BODY_CHARS: usize = 10_000;
/// Largest rendered HTML; deeply nested quotes can blow a short body up.
pub const MAX_BODY_HTML_BYTES: usize = 64 * 1024;
/// Deepest nesting of quotes and lists. HTML parsers (ammonia's included)
/// spend time in proportion to depth × length, so 10,000 characters of `>`
/// cost a third of a second to sanitize (found by `cargo fuzz`; figures in
/// BENCHMARKS.md). Such a body is refused before any HTML is parsed; no
/// conversation nests a hundred quotes deep.
pub const MAX_BODY_NESTING: usize = 100;

/// The only tags that survive sanitizing (the contract's allow-list).
const ALLOWED_TAGS: [&str; 12] = [
    "p",
    "br",
    "strong",
    "em",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
];
/// The only link schemes that keep their `href`.
const ALLOWED_SCHEMES: [&str; 3] = ["http", "https", "mailto"];
/// Forced onto every link: user-generated, not endorsed, no window.opener.
pub const LINK_REL: &str = "nofollow ugc noopener noreferrer";

/// The sanitizer, built once. `Builder::empty()` still keeps generic attributes
/// and two dozen URL schemes, so everything is set explicitly here.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(HashSet::from(ALLOWED_TAGS))
        .generic_attributes(HashSet::new())
        .tag_attributes([("a", HashSet::from(["href"]))].into())
        .url_schemes(HashSet::from(ALLOWED_SCHEMES))
        .url_relative(UrlRelative::Deny)
        .link_rel(Some(LINK_REL))
        // The content of these is code or styling, never prose worth keeping.
        .clean_content_tags(HashSet::from([
            "script",
            "style",
            "template",
            "textarea",
            "noscript",
            "iframe",
            "xmp",
            "noembed",
            "noframes",
            "plaintext",
            "title",
            "object",
            "svg",
            "math",
        ]))
        .strip_comments(true);
    builder
});

/// A comment body: the trimmed Markdown (1–10,000 characters, no control
/// characters but tab, CR and LF) and its sanitized HTML rendering, which
/// shows at least one visible character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody {
    markdown: String,
    html: String,
}

impl CommentBody {
    pub fn parse(value: &str) -> Result<Self, String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err("is required".into());
        }
        if trimmed.chars().count() > MAX_BODY_CHARS {
            return Err(format!("must be at most {MAX_BODY_CHARS} characters"));
        }
        if super::has_control_chars(trimmed, &['\t', '\r', '\n']) {
            return Err("must not contain control characters".into());
        }
        if nesting_depth(trimmed) > MAX_BODY_NESTING {
            return Err(format!(
                "is nested too deeply (at most {MAX_BODY_NESTING} levels of quotes and lists)"
            ));
        }
        let html = render(trimmed);
        if html.len() > MAX_BODY_HTML_BYTES {
            return Err("renders to too much HTML (too deeply nested?)".into());
        }
        // `<img src=x>`, an empty link, a rule: the sanitizer keeps none of it,
        // and a moderator would be asked to approve a blank comment.
        if !has_visible_text(&html) {
            return Err("says nothing once formatting is removed".into());
        }
        Ok(Self {
            markdown: trimmed.to_owned(),
            html,
        })
    }

    /// The Markdown as the commenter wrote it (trimmed).
    pub fn markdown(&self) -> &str {
        &self.markdown
    }

    /// The sanitized HTML, safe to insert into a page.
    pub fn html(&self) -> &str {
        &self.html
    }
}

/// Runs HTML through the allow-list alone (no Markdown): what `render` does last.
///
/// The cleaner's tree can hold nestings that an HTML parser would never build
/// (say a `<p>` inside a `<p>`, left behind by a stripped `<select>`), so the
/// serialized HTML can parse into another tree. It is cleaned again until it
/// no longer changes: what is stored is exactly what a browser will build, and
/// sanitizing it again changes nothing (both found by `cargo fuzz`, fuzz/README.md).
/// HTML over the body limit, which `CommentBody::parse` refuses anyway, gets
/// no second pass: cleaning deeply nested HTML costs quadratic time.
pub fn sanitize(html: &str) -> String {
    settle(clean_once(html))
}

/// Cleans the output of one pass again until it no longer changes (see [`sanitize`]).
fn settle(mut clean: String) -> String {
    for _ in 0..MAX_SANITIZE_PASSES {
        if clean.len() > MAX_BODY_HTML_BYTES {
            break;
        }
        let again = clean_once(&clean);
        if again == clean {
            break;
        }
        clean = again;
    }
    clean
}

/// More passes than any input has needed: a parsed tree serializes stably.
const MAX_SANITIZE_PASSES: usize = 4;

/// One pass of the allow-list.
fn clean_once(html: &str) -> String {
    // An HTML parser drops the newline right after `<pre>`, and html5ever's
    // serializer does not write the extra one that the HTML spec's does, so a
    // `<pre>` whose text starts with a newline would lose one at every parse.
    // Here `pre` has no attributes and every `<` of text is escaped, so this
    // string is only ever that start tag followed by text.
    SANITIZER.clean(html).to_string().replace("<pre>\n", "<pre>\n\n")
}

/// True when sanitized HTML shows at least one visible character: its text
/// outside tags, with entities counted as what they stand for (`&nbsp;` is
/// blank; `&amp;`, `&lt;`, `&gt;` and `&quot;` are not). It reads only what the
/// sanitizer's serializer writes: attribute values in double quotes, and no
/// raw `<` in text.
pub fn has_visible_text(html: &str) -> bool {
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            rest = after_tag(rest);
        } else if let Some(after) = rest.strip_prefix("&nbsp;") {
            rest = after;
        } else if c == '&' || !super::is_invisible(c) {
            return true;
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    false
}

/// The text after the tag that `html` starts with; a `>` inside a quoted
/// attribute value does not end it.
fn after_tag(html: &str) -> &str {
    let mut quoted = false;
    for (index, byte) in html.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b'>' if !quoted => return &html[index + 1..],
            _ => {}
        }
    }
    ""
}

/// How deeply the Markdown nests block quotes and lists (the first level past
/// [`MAX_BODY_NESTING`] ends the count: the body is refused either way).
pub fn nesting_depth(markdown: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Start(Tag::BlockQuote(_) | Tag::List(_)) => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_BODY_NESTING {
                    break;
                }
            }
            Event::End(TagEnd::BlockQuote(_) | TagEnd::List(_)) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Markdown → HTML → allow-list. Strikethrough is the one extension, because
/// `del` is on the allow-list; tables, images and headings are not.
///
/// Markdown without raw HTML gets one sanitizer pass, not the confirming
/// second one of [`sanitize`] (about 10 µs of a submission's CPU). Why one is
/// enough there: pulldown-cmark's own output is well-formed HTML that a
/// parser builds exactly as written (its escaping covers every `<` and `&` of
/// text, it never nests links or puts a block inside a `<p>`), and what the
/// allow-list then drops from its tag set (`h1`–`h6`, `img`, `hr`) holds only
/// inline content or nothing, which fits wherever it is lifted to. So the
/// cleaned tree is one a parser would build from its serialization, which is
/// what the second pass confirms. The exceptions are the parser's input
/// rules: the newline after `<pre>`, which `clean_once` handles, and a
/// leading byte-order mark, which gets the second pass. Both fuzz findings of
/// non-idempotence needed raw HTML (`<select>`, a literal `<pre>`). The fuzz
/// target (`fuzz/fuzz_targets/markdown_sanitize.rs`) and the properties in
/// `tests/properties.rs` assert `sanitize(render(x)) == render(x)` for every
/// input, and debug builds check it on every rendering.
pub fn render(markdown: &str) -> String {
    let mut unsafe_html = String::with_capacity(markdown.len() * 5 / 4 + 16);
    let mut raw_html = false;
    let events = Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH).inspect(|event| {
        raw_html |= matches!(event, Event::Html(_) | Event::InlineHtml(_));
    });
    pulldown_cmark::html::push_html(&mut unsafe_html, events);
    let clean = clean_once(&unsafe_html);
    // An HTML parser drops a byte-order mark that starts its input, so output
    // starting with one (a heading of just U+FEFF, its tag stripped) changes
    // when parsed again (found by the property in tests/properties.rs).
    if raw_html || clean.starts_with('\u{feff}') {
        return settle(clean);
    }
    debug_assert!(
        clean.len() > MAX_BODY_HTML_BYTES || clean_once(&clean) == clean,
        "one pass was not stable for Markdown without raw HTML: {markdown:?}"
    );
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(markdown: &str) -> String {
        CommentBody::parse(markdown).unwrap().html().to_owned()
    }

    #[test]
    fn markdown_is_rendered_to_allowed_tags() {
        assert_eq!(
            html("Hello **bold** and *em*"),
            "<p>Hello <strong>bold</strong> and <em>em</em></p>\n"
        );
        assert_eq!(html("~~gone~~"), "<p><del>gone</del></p>\n");
        assert!(html("> quoted").contains("<blockquote>"));
        assert!(html("- a\n- b").contains("<ul>\n<li>a</li>"));
        assert!(html("1. a\n2. b").contains("<ol>"));
        assert_eq!(
            html("```\nlet x = 1;\n```"),
            "<pre><code>let x = 1;\n</code></pre>\n"
        );
    }

    #[test]
    fn links_keep_only_safe_absolute_hrefs_and_get_the_forced_rel() {
        assert_eq!(
            html("[site](https://example.org/a)"),
            "<p><a href=\"https://example.org/a\" rel=\"nofollow ugc noopener noreferrer\">site</a></p>\n"
        );
        assert!(html("[mail](mailto:a@example.org)").contains("href=\"mailto:a@example.org\""));
        for bad in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](&#106;avascript:alert(1))",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x](/relative)",
            "[x](vbscript:msgbox)",
            "<a href=\"tel:123\">x</a>",
        ] {
            let out = html(bad);
            assert!(!out.contains("href"), "{bad:?} gave {out}");
            assert!(out.contains('x'), "the link text is kept: {out}");
        }
    }

    #[test]
    fn scripts_handlers_styles_and_other_attributes_are_removed() {
        let out = html("hi <script>alert(1)</script> there");
        assert!(!out.contains("script") && !out.contains("alert"), "{out}");
        assert!(out.contains("hi") && out.contains("there"));

        let out = html("<img src=x onerror=alert(1)>after");
        assert!(!out.contains("img") && !out.contains("onerror"), "{out}");

        let out = html("<p style=\"color:red\" title=\"t\" class=\"c\" id=\"i\" onclick=\"x()\">styled</p>");
        assert_eq!(out, "<p>styled</p>");

        let out = html("<div><b>bold</b> <h1>big</h1></div>");
        assert!(
            !out.contains("<div") && !out.contains("<b>") && !out.contains("<h1"),
            "{out}"
        );
        assert!(out.contains("bold") && out.contains("big"));
    }

    #[test]
    fn code_blocks_lose_their_language_class() {
        assert_eq!(
            html("```rust\nfn main() {}\n```"),
            "<pre><code>fn main() {}\n</code></pre>\n"
        );
    }

    #[test]
    fn bodies_are_trimmed_and_limited_in_characters() {
        assert_eq!(CommentBody::parse("  hi \n").unwrap().markdown(), "hi");
        assert!(CommentBody::parse(" \n ").is_err());
        assert!(CommentBody::parse(&"é".repeat(MAX_BODY_CHARS)).is_ok());
        assert!(CommentBody::parse(&"é".repeat(MAX_BODY_CHARS + 1)).is_err());
    }

    #[test]
    fn tabs_and_newlines_are_allowed_other_controls_are_not() {
        assert!(CommentBody::parse("a\tb\r\nc").is_ok());
        assert!(CommentBody::parse("a\0b").is_err());
        assert!(CommentBody::parse("a\u{1b}[31mb").is_err());
    }

    /// Found by `cargo fuzz run markdown_sanitize`: 10,000 characters of `>`
    /// took a third of a second to sanitize. Refused before any HTML parsing.
    #[test]
    fn fuzz_deeply_nested_quotes_and_lists_are_refused_early() {
        for body in [
            format!("{}x", ">".repeat(9_999)),
            format!("{}x", "- ".repeat(4_999)),
            format!("{}x", "> - ".repeat(60)),
        ] {
            // Refused for its depth, which is checked before any HTML is built
            // (what that saves is measured by bench/submit_cost.rs, not here).
            let refused = CommentBody::parse(&body).unwrap_err();
            assert!(refused.contains("nested too deeply"), "{refused}");
            assert!(nesting_depth(&body) > MAX_BODY_NESTING);
        }
        let deep_but_allowed = format!("{}x", ">".repeat(MAX_BODY_NESTING));
        assert_eq!(nesting_depth(&deep_but_allowed), MAX_BODY_NESTING);
        assert!(CommentBody::parse(&deep_but_allowed).is_ok());
        assert_eq!(nesting_depth("> a\n\n> b\n\n- c\n  - d"), 2);
    }

    /// Found by `cargo fuzz run markdown_sanitize` (fuzz/README.md): the
    /// newline that opens a `<pre>`'s text was lost at every sanitizing.
    #[test]
    fn fuzz_a_pre_starting_with_a_newline_is_sanitized_idempotently() {
        for input in [
            "<pre>\n\nx</pre>",
            "<pre>\n\n\nx\n</pre>",
            "a\n\n<pre>\n\n  x</pre>",
        ] {
            let once = sanitize(input);
            assert_eq!(sanitize(&once), once, "{input:?}");
            let body = CommentBody::parse(input).unwrap();
            assert_eq!(sanitize(body.html()), body.html(), "{input:?}");
        }
        // The blank first line is kept (a parser drops the newline after `<pre>`).
        assert_eq!(sanitize("<pre>\n\nx</pre>"), "<pre>\n\nx</pre>");
        assert_eq!(sanitize("<pre>\nx</pre>"), "<pre>x</pre>");
        assert_eq!(render("```\n\nx\n```"), "<pre><code>\nx\n</code></pre>\n");
    }

    /// Found by `cargo fuzz run markdown_sanitize`: a stripped `<select>` left
    /// a `<p>` inside a `<p>`, which parses back into another tree.
    #[test]
    fn fuzz_markup_that_parses_into_another_tree_is_sanitized_idempotently() {
        let input = "> quoted\n>> dee@<select>\n- b\n\n1. one\n2. two\n";
        let body = CommentBody::parse(input).unwrap();
        assert_eq!(sanitize(body.html()), body.html());
        assert!(!body.html().contains("@<p>"), "{}", body.html());
        let once = sanitize("<p>a<select><p>b</p></select>c</p>");
        assert_eq!(sanitize(&once), once);
    }

    /// Found by `one_sanitizer_pass_is_stable_for_markdown_without_raw_html`
    /// (tests/properties.rs): Markdown without raw HTML whose cleaned HTML
    /// starts with a byte-order mark, which a parser drops, so one pass alone
    /// was not stable.
    #[test]
    fn a_leading_byte_order_mark_gets_the_confirming_pass() {
        for body in ["\u{feff}\n-   \n", "\u{feff}\n===", "# \u{feff}\n\nx"] {
            let once = render(body);
            assert_eq!(sanitize(&once), once, "{body:?}");
        }
    }

    /// Found when the service was tried as an attacker would: `<img src=x>`
    /// was accepted with an empty `body_html`.
    #[test]
    fn a_body_that_renders_to_nothing_is_refused() {
        for blank in [
            "<img src=x>",
            "<img src=x onerror=alert(1)>",
            "![](https://example.org/a.png)",
            "[](https://example.org/)",
            "<script>alert(1)</script>",
            "---",
            "&nbsp;",
            "\u{200B}\u{FEFF}",
            "```\n   \n```",
            "<a href=\"https://example.org/>\"></a>",
        ] {
            let refused = CommentBody::parse(blank).unwrap_err();
            assert_eq!(refused, "says nothing once formatting is removed", "{blank:?}");
        }
        for said in [
            "a",
            "&amp;",
            "<",
            "1. x",
            "`0`",
            "[x](https://example.org/)",
            "<b>!</b>",
        ] {
            assert!(CommentBody::parse(said).is_ok(), "{said:?}");
        }
    }

    #[test]
    fn visible_text_is_read_outside_tags_and_quoted_attributes() {
        assert!(!has_visible_text(
            "<p><a href=\"https://x/>y\" rel=\"r\"></a></p>\n"
        ));
        assert!(has_visible_text("<p><a href=\"https://x/>y\">z</a></p>"));
        assert!(!has_visible_text("<p>&nbsp;\u{200B}</p><br>"));
        assert!(has_visible_text("<p>&lt;</p>"));
        assert!(!has_visible_text(""));
        assert!(!has_visible_text("<p"));
    }

    #[test]
    fn a_body_rendering_to_more_than_64_kib_is_refused() {
        // Each `>` opens another blockquote: few characters, a lot of HTML.
        let nested = format!("{} deep", ">".repeat(5_000));
        assert!(nested.chars().count() <= MAX_BODY_CHARS);
        assert!(CommentBody::parse(&nested).is_err());
    }
}
