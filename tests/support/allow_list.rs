//! the contract's `body_html` allow-list, as the tests and fuzz targets check it:
//! by parsing the HTML (as a browser's `innerHTML` would), never by string
//! search. Written from the contract (`openapi.yaml`) on purpose, not from the service's own
//! constants, so that a change to those cannot quietly change the check.
//! `#[path]`-included by `tests/properties.rs`, `tests/api` and `fuzz/`.

use scraper::{Html, Node};

/// The only elements `body_html` may contain.
pub const ALLOWED_TAGS: [&str; 12] = [
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
/// The `rel` every link must carry, exactly.
pub const LINK_REL: &str = "nofollow ugc noopener noreferrer";
/// The schemes an `href` may have (absolute URLs only).
pub const LINK_SCHEMES: [&str; 3] = ["http", "https", "mailto"];
const HTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

/// Everything in `html` (a `body_html`) that is outside the allow-list; empty when it is inside.
pub fn allow_list_violations(html: &str) -> Vec<String> {
    let fragment = Html::parse_fragment(html);
    let mut violations = Vec::new();
    // The fragment parser wraps the nodes in one `<html>` element; nothing else is at the top.
    let tops: Vec<_> = fragment.tree.root().children().collect();
    if tops.len() != 1 {
        violations.push(format!("{} top-level nodes", tops.len()));
    }
    let wrapper = fragment.root_element();
    for node in wrapper.descendants().skip(1) {
        match node.value() {
            Node::Text(_) => {}
            Node::Element(element) => {
                let name = element.name();
                if &*element.name.ns != HTML_NAMESPACE {
                    violations.push(format!("<{name}> in namespace {}", &*element.name.ns));
                }
                if !ALLOWED_TAGS.contains(&name) {
                    violations.push(format!("element <{name}>"));
                }
                let mut rel = None;
                for (attribute, value) in element.attrs() {
                    match (name, attribute) {
                        ("a", "rel") => rel = Some(value),
                        ("a", "href") => match url::Url::parse(value) {
                            Ok(url) if LINK_SCHEMES.contains(&url.scheme()) => {}
                            Ok(url) => violations.push(format!("href scheme {}", url.scheme())),
                            Err(e) => violations.push(format!("href {value:?} is not absolute: {e}")),
                        },
                        _ => violations.push(format!("attribute {attribute}={value:?} on <{name}>")),
                    }
                }
                if name == "a" && rel != Some(LINK_REL) {
                    violations.push(format!("<a> with rel {rel:?}"));
                }
            }
            other => violations.push(format!("node {other:?}")),
        }
    }
    violations
}
