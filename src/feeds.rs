//! The Atom feeds (RFC 4287) of approved comments: the site's newest
//! ([`recent`]) and one thread's ([`thread`]). This module owns what a feed
//! says and how it is written; `routes::feeds` only turns it into HTTP.
//!
//! What a feed promises:
//! - only approved comments, read through [`FeedEntry`], which has no email,
//!   IP or user agent field: a feed cannot carry them;
//! - stable entry ids: `tag:HOST,DATE:marginalia/comment/ID` (RFC 4151), from
//!   `PUBLIC_URL`'s host, the day the comment was written and its id. Neither
//!   changes with a restart, another instance, the port or a thread's rename;
//! - each entry links to its comment on the blog: `SITE_URL` + uri +
//!   `#marginalia-comment-ID`, the anchor the widget gives each comment;
//! - the content is the stored `body_html` (sanitized when it was stored) as
//!   `type="html"`, escaped by the XML writer like every other value; the
//!   XML is written by `quick-xml`, never pasted together from strings;
//! - entries are the newest [`FEED_ENTRIES`] by id, newest first; an entry's
//!   `updated` is its approval time (its writing time when it was stored
//!   approved), the feed's `updated` the newest entry's (the Unix epoch for
//!   an empty feed, so that its bytes and ETag stay the same).
//!
//! Feeds are cached with the thread pages in
//! [`crate::thread_cache::ThreadCache`]: a thread's feed is dropped with its
//! thread, the recent feed by the invalidation of any thread, so a moderation
//! action shows in the very next feed read, on every instance (PostgreSQL's
//! `LISTEN/NOTIFY` invalidates there too).

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::{Host, Url};
use warp::http::HeaderValue;

use crate::config::Site;
use crate::domain::ThreadUri;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::store::{FeedEntry, StoreError};
use crate::thread_cache::{CachedPage, FEED_PAGE, SITE_WIDE};

/// Entries in a feed, the recent one and a thread's alike: a feed shows
/// what is new, not a thread's whole history (the widget does that).
pub const FEED_ENTRIES: u32 = 50;

/// The media type of both feeds.
pub const CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";

/// Path of the recent-comments feed on the service.
pub const RECENT_PATH: &str = "/feed/recent.atom";

/// Path of a thread's feed on the service (its `uri` goes in the query).
pub const THREAD_PATH: &str = "/feed/thread.atom";

const ATOM_NAMESPACE: &str = "http://www.w3.org/2005/Atom";

/// The site's newest approved comments as an Atom feed, from the cache when
/// it is fresh.
pub async fn recent(state: &AppState) -> Result<Arc<CachedPage>, StoreError> {
    cached(state, SITE_WIDE, async || {
        let entries = state.store.recent_feed_entries(FEED_ENTRIES).await?;
        let head = FeedHead {
            id: state.site.public_link(RECENT_PATH),
            title: state
                .lang
                .text("feed.title.recent", &[("site", state.site.name.as_str())]),
            self_link: state.site.public_link(RECENT_PATH),
            alternate: state.site.site_url.to_string(),
        };
        Ok(render(&state.site, state.lang, &head, &entries))
    })
    .await
}

/// One thread's newest approved comments as an Atom feed, from the cache
/// when it is fresh. An unknown thread gives a valid, empty feed, as an
/// unknown thread's read gives an empty list.
pub async fn thread(state: &AppState, uri: &ThreadUri) -> Result<Arc<CachedPage>, StoreError> {
    cached(state, uri.as_str(), async || {
        let entries = state.store.thread_feed_entries(uri, FEED_ENTRIES).await?;
        let self_link = thread_feed_link(&state.site, uri);
        let head = FeedHead {
            id: self_link.clone(),
            title: state.lang.text(
                "feed.title.thread",
                &[("uri", uri.as_str()), ("site", state.site.name.as_str())],
            ),
            self_link,
            alternate: page_link(&state.site, uri.as_str(), None),
        };
        Ok(render(&state.site, state.lang, &head, &entries))
    })
    .await
}

/// The address of a thread's feed on the service, its uri percent-encoded
/// in the query.
pub fn thread_feed_link(site: &Site, uri: &ThreadUri) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("uri", uri.as_str())
        .finish();
    site.public_link(&format!("{THREAD_PATH}?{query}"))
}

/// The cached feed of `key` (a thread's uri, or [`SITE_WIDE`]), else the one
/// `read` renders, cached unless something was invalidated meanwhile. While
/// the database cannot be reached, the last feed rendered beats an error, as
/// for the thread read (see `ThreadCache::last_known`).
async fn cached(
    state: &AppState,
    key: &str,
    read: impl AsyncFnOnce() -> Result<CachedPage, StoreError>,
) -> Result<Arc<CachedPage>, StoreError> {
    if let Some(page) = state.threads.get(key, FEED_PAGE) {
        return Ok(page);
    }
    let epoch = state.threads.epoch();
    match read().await {
        Ok(page) => {
            let page = Arc::new(page);
            state.threads.insert(key, FEED_PAGE, page.clone(), epoch);
            Ok(page)
        }
        Err(error @ StoreError::Unavailable(_)) => state.threads.last_known(key, FEED_PAGE).ok_or(error),
        Err(error) => Err(error),
    }
}

/// What a feed says about itself.
struct FeedHead {
    /// The feed's `atom:id`: its own address, which is permanent as long as
    /// `PUBLIC_URL` is.
    id: String,
    title: String,
    self_link: String,
    /// The page the feed is about: the blog, or the thread's page.
    alternate: String,
}

/// Writes the feed and digests it into its ETag.
fn render(site: &Site, lang: Lang, head: &FeedHead, entries: &[FeedEntry]) -> CachedPage {
    let mut writer = Writer::new(Vec::with_capacity(1024 + entries.len() * 1024));
    write_feed(&mut writer, site, lang, head, entries).expect("writing XML into memory cannot fail");
    let body = writer.into_inner();
    // A digest of the exact bytes: whatever changes the feed changes it.
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    CachedPage {
        body: Bytes::from(body),
        etag: HeaderValue::from_str(&etag).expect("a quoted hex digest is a valid header value"),
        // A feed lists comments only: the age rule closing its thread changes nothing in it.
        fresh_until: None,
    }
}

fn write_feed(
    writer: &mut Writer<Vec<u8>>,
    site: &Site,
    lang: Lang,
    head: &FeedHead,
    entries: &[FeedEntry],
) -> io::Result<()> {
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    // Entries come newest first, so the first one's time is the feed's.
    let updated = entries
        .iter()
        .map(entry_updated)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    writer
        .create_element("feed")
        .with_attribute(("xmlns", ATOM_NAMESPACE))
        .write_inner_content(|writer| {
            text_element(writer, "id", &head.id)?;
            text_element(writer, "title", &head.title)?;
            text_element(writer, "updated", &timestamp(updated))?;
            link(writer, "self", "application/atom+xml", &head.self_link)?;
            link(writer, "alternate", "text/html", &head.alternate)?;
            writer
                .create_element("generator")
                .with_attribute(("version", env!("CARGO_PKG_VERSION")))
                .write_text_content(BytesText::new("marginalia"))?;
            for entry in entries {
                write_entry(writer, site, lang, entry)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_entry(writer: &mut Writer<Vec<u8>>, site: &Site, lang: Lang, entry: &FeedEntry) -> io::Result<()> {
    writer.create_element("entry").write_inner_content(|writer| {
        text_element(writer, "id", &entry_id(site, entry))?;
        let title = lang.text(
            "feed.entry.title",
            &[("name", entry.name.as_str()), ("uri", entry.uri.as_str())],
        );
        text_element(writer, "title", &title)?;
        text_element(writer, "updated", &timestamp(entry_updated(entry)))?;
        text_element(writer, "published", &timestamp(entry.created_at))?;
        writer.create_element("author").write_inner_content(|writer| {
            text_element(writer, "name", &entry.name)?;
            if let Some(website) = &entry.website {
                text_element(writer, "uri", website)?;
            }
            Ok(())
        })?;
        link(writer, "alternate", "text/html", &comment_link(site, entry))?;
        writer
            .create_element("content")
            .with_attribute(("type", "html"))
            .write_text_content(BytesText::new(&xml_chars(&entry.body_html)))?;
        Ok(())
    })?;
    Ok(())
}

/// `<name>text</name>`, the text escaped.
fn text_element(writer: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(&xml_chars(text)))?;
    Ok(())
}

/// `<link rel=… type=… href=…/>`, the address escaped.
fn link(writer: &mut Writer<Vec<u8>>, rel: &str, media_type: &str, href: &str) -> io::Result<()> {
    writer
        .create_element("link")
        .with_attribute(("rel", rel))
        .with_attribute(("type", media_type))
        .with_attribute(("href", xml_chars(href).as_ref()))
        .write_empty()?;
    Ok(())
}

/// The entry's permanent id (RFC 4151 tag URI): `PUBLIC_URL`'s host, the day
/// the comment was written (the tagging authority held that name then, as
/// the comment was written on its service) and the comment's id. Mark
/// Pilgrim's "How to make a good ID in Atom" recommends this shape.
pub fn entry_id(site: &Site, entry: &FeedEntry) -> String {
    let day = entry.created_at.to_offset(time::UtcOffset::UTC).date();
    format!(
        "tag:{},{day}:marginalia/comment/{}",
        tag_authority(&site.public_url),
        entry.id
    )
}

/// A tag URI's authority is a DNS name: a domain or IPv4 address as it is;
/// an IPv6 address (whose colons the syntax forbids) with dashes for colons.
fn tag_authority(url: &Url) -> String {
    match url.host() {
        Some(Host::Domain(domain)) => domain.to_owned(),
        Some(Host::Ipv4(address)) => address.to_string(),
        Some(Host::Ipv6(address)) => address.to_string().replace(':', "-"),
        // `Site` only holds http(s) URLs, which always have a host.
        None => "localhost".to_owned(),
    }
}

/// The comment on the blog: its thread's page and the anchor the widget
/// gives it (`assets/embed.js`: `marginalia-comment-ID`).
pub fn comment_link(site: &Site, entry: &FeedEntry) -> String {
    let anchor = format!("marginalia-comment-{}", entry.id);
    page_link(site, &entry.uri, Some(&anchor))
}

/// `SITE_URL` + uri (+ `#fragment`) as a URI: what a uri holds beyond ASCII
/// (it is used exactly as submitted) percent-encoded, as every feed reader
/// can follow it.
fn page_link(site: &Site, uri: &str, fragment: Option<&str>) -> String {
    let page = site.page_url(uri);
    match Url::parse(&page) {
        Ok(mut url) => {
            if fragment.is_some() {
                url.set_fragment(fragment);
            }
            url.into()
        }
        // Cannot happen for a uri starting with `/` after an http(s) URL;
        // the plain concatenation is still the page.
        Err(_) => match fragment {
            Some(fragment) => format!("{page}#{fragment}"),
            None => page,
        },
    }
}

/// When the entry last changed: its approval, or its writing when it was
/// stored approved.
fn entry_updated(entry: &FeedEntry) -> OffsetDateTime {
    entry
        .moderated_at
        .map_or(entry.created_at, |moderated| moderated.max(entry.created_at))
}

/// RFC 3339 in UTC, as Atom's date constructs want.
fn timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The text without characters XML 1.0 cannot carry at all (most C0
/// controls, lone surrogates cannot occur in a `str`, U+FFFE and U+FFFF):
/// the parsers refuse them in submissions, but rows written by other means
/// (the benchmark seeder) are not parsed, and one such character would make
/// the whole feed unreadable.
fn xml_chars(text: &str) -> Cow<'_, str> {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().filter(|c| allowed(*c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        Site {
            public_url: Url::parse("https://comments.example.org").unwrap(),
            site_url: Url::parse("https://blog.example.org").unwrap(),
            name: "Example".into(),
        }
    }

    fn entry(id: i64, name: &str, body_html: &str) -> FeedEntry {
        FeedEntry {
            id,
            uri: "/posts/a/".into(),
            name: name.into(),
            website: None,
            body_html: body_html.into(),
            created_at: time::macros::datetime!(2026-12-02 10:00:00 UTC),
            moderated_at: Some(time::macros::datetime!(2026-12-02 11:30:00.25 UTC)),
        }
    }

    fn head() -> FeedHead {
        FeedHead {
            id: "https://comments.example.org/feed/recent.atom".into(),
            title: "Comments".into(),
            self_link: "https://comments.example.org/feed/recent.atom".into(),
            alternate: "https://blog.example.org/".into(),
        }
    }

    #[test]
    fn entry_ids_name_the_public_host_the_day_and_the_comment() {
        let entry = entry(42, "Ada", "<p>x</p>");
        assert_eq!(
            entry_id(&site(), &entry),
            "tag:comments.example.org,2026-12-02:marginalia/comment/42"
        );
        // The port is no part of it: an instance on another port gives the same id.
        let mut other = site();
        other.public_url = Url::parse("https://comments.example.org:8443/").unwrap();
        assert_eq!(entry_id(&other, &entry), entry_id(&site(), &entry));
        other.public_url = Url::parse("http://[::1]:3000/").unwrap();
        assert_eq!(
            entry_id(&other, &entry),
            "tag:--1,2026-12-02:marginalia/comment/42"
        );
    }

    #[test]
    fn links_go_to_the_comment_on_the_blog_page() {
        let entry = entry(7, "Ada", "");
        assert_eq!(
            comment_link(&site(), &entry),
            "https://blog.example.org/posts/a/#marginalia-comment-7"
        );
    }

    #[test]
    fn markup_in_names_and_bodies_is_escaped_text() {
        let page = render(
            &site(),
            Lang::En,
            &head(),
            &[entry(1, "<b>Eve</b> & co", "<p>hi <script>x</script></p>")],
        );
        let xml = std::str::from_utf8(&page.body).unwrap();
        assert!(
            xml.contains("<name>&lt;b&gt;Eve&lt;/b&gt; &amp; co</name>"),
            "{xml}"
        );
        assert!(xml.contains("&lt;p&gt;hi &lt;script&gt;"), "{xml}");
        assert!(!xml.contains("<script>"), "{xml}");
        assert!(!xml.contains("<b>"), "{xml}");
    }

    #[test]
    fn characters_xml_cannot_carry_are_dropped() {
        assert_eq!(xml_chars("a\u{1}b\u{FFFE}c\td"), "abc\td");
        assert!(matches!(xml_chars("plain é ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn the_same_entries_give_the_same_bytes_and_etag() {
        let entries = [entry(2, "Ada", "<p>b</p>"), entry(1, "Bob", "<p>a</p>")];
        let first = render(&site(), Lang::En, &head(), &entries);
        let second = render(&site(), Lang::En, &head(), &entries);
        assert_eq!(first.body, second.body);
        assert_eq!(first.etag, second.etag);
        let changed = render(&site(), Lang::En, &head(), &entries[..1]);
        assert_ne!(first.etag, changed.etag);
    }

    #[test]
    fn times_are_utc_rfc3339_and_an_empty_feed_is_dated_at_the_epoch() {
        let page = render(&site(), Lang::En, &head(), &[]);
        let xml = std::str::from_utf8(&page.body).unwrap();
        assert!(xml.contains("<updated>1970-01-01T00:00:00Z</updated>"), "{xml}");
        let page = render(&site(), Lang::En, &head(), &[entry(1, "Ada", "")]);
        let xml = std::str::from_utf8(&page.body).unwrap();
        assert!(
            xml.contains("<updated>2026-12-02T11:30:00.25Z</updated>"),
            "{xml}"
        );
        assert!(
            xml.contains("<published>2026-12-02T10:00:00Z</published>"),
            "{xml}"
        );
    }
}
