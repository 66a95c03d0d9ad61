//! WordPress exports (WXR 1.0, 1.1 and 1.2, Tools → Export), read as a
//! stream. Each `<item>` (a post, page or attachment) gives the thread of
//! its comments: the path of its `<link>` by default, of its `<guid>`, or
//! its slug (`--uri-from`). Its `<wp:comment>`s are kept until the item
//! ends, so the order of an item's fields does not matter; one post's
//! comments are the most held in memory at once.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::xml::{self, XmlEvent, XmlFile};
use super::{Body, ImportError, Sink, SourceRecord, UriFrom, uri_of_link};
use crate::domain::{SpamClues, Status};

/// True for the namespace of WXR's own elements, in any version and with
/// either scheme (`http://wordpress.org/export/1.2/`), and not for its
/// sub-namespaces (`…/1.2/excerpt/`).
fn is_wxr_namespace(ns: Option<&str>) -> bool {
    let Some(ns) = ns else { return false };
    let rest = ns
        .strip_prefix("http://")
        .or_else(|| ns.strip_prefix("https://"))
        .and_then(|rest| rest.strip_prefix("wordpress.org/export/1."));
    match rest {
        Some(version) => {
            let digits = version.strip_suffix('/').unwrap_or(version);
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Link,
    Guid,
    PostName,
    PostId,
    CommentStatus,
    CommentId,
    Author,
    Email,
    Url,
    Ip,
    DateGmt,
    Date,
    Content,
    Approved,
    Type,
    Parent,
}

#[derive(Debug, Default)]
struct Item {
    link: String,
    guid: String,
    post_name: String,
    post_id: String,
    comment_status: String,
    comments: Vec<Comment>,
}

#[derive(Debug, Default)]
struct Comment {
    id: String,
    author: String,
    email: String,
    url: String,
    ip: String,
    date_gmt: String,
    date: String,
    content: String,
    approved: String,
    kind: String,
    parent: String,
}

/// The item field an element of an `<item>` holds, if we keep it.
fn item_field(wxr: bool, unbound: bool, local: &str) -> Option<Field> {
    match (wxr, unbound, local) {
        (false, true, "link") => Some(Field::Link),
        (false, true, "guid") => Some(Field::Guid),
        (true, _, "post_name") => Some(Field::PostName),
        (true, _, "post_id") => Some(Field::PostId),
        (true, _, "comment_status") => Some(Field::CommentStatus),
        _ => None,
    }
}

/// The comment field an element of a `<wp:comment>` holds, if we keep it.
fn comment_field(local: &str) -> Option<Field> {
    Some(match local {
        "comment_id" => Field::CommentId,
        "comment_author" => Field::Author,
        "comment_author_email" => Field::Email,
        "comment_author_url" => Field::Url,
        "comment_author_IP" => Field::Ip,
        "comment_date_gmt" => Field::DateGmt,
        "comment_date" => Field::Date,
        "comment_content" => Field::Content,
        "comment_approved" => Field::Approved,
        "comment_type" => Field::Type,
        "comment_parent" => Field::Parent,
        _ => return None,
    })
}

impl Item {
    fn set(&mut self, field: Field, value: String) {
        let comment = self.comments.last_mut();
        match (field, comment) {
            (Field::Link, _) => self.link = value,
            (Field::Guid, _) => self.guid = value,
            (Field::PostName, _) => self.post_name = value,
            (Field::PostId, _) => self.post_id = value,
            (Field::CommentStatus, _) => self.comment_status = value,
            (_, None) => {}
            (Field::CommentId, Some(c)) => c.id = value,
            (Field::Author, Some(c)) => c.author = value,
            (Field::Email, Some(c)) => c.email = value,
            (Field::Url, Some(c)) => c.url = value,
            (Field::Ip, Some(c)) => c.ip = value,
            (Field::DateGmt, Some(c)) => c.date_gmt = value,
            (Field::Date, Some(c)) => c.date = value,
            (Field::Content, Some(c)) => c.content = value,
            (Field::Approved, Some(c)) => c.approved = value,
            (Field::Type, Some(c)) => c.kind = value,
            (Field::Parent, Some(c)) => c.parent = value,
        }
    }
}

/// Reads a WXR file into `sink`.
pub async fn read(path: &std::path::Path, uri_from: UriFrom, sink: &mut Sink) -> Result<(), ImportError> {
    let now = OffsetDateTime::now_utc();
    let mut file = XmlFile::open(path)?;
    let mut depth = 0usize;
    let mut saw_wxr = false;
    // The open item and the depth of its element; the depth of the open comment.
    let mut item: Option<(Item, usize)> = None;
    let mut comment_depth: Option<usize> = None;
    let mut capture: Option<(Field, usize)> = None;
    let mut text = String::new();
    loop {
        let mut finished: Option<Item> = None;
        match file.next()? {
            XmlEvent::Open { ns, element, empty } => {
                depth += 1;
                let local = xml::local(&element);
                let wxr = is_wxr_namespace(ns);
                saw_wxr |= wxr;
                if capture.is_none() {
                    match (&mut item, comment_depth) {
                        (None, _) if ns.is_none() && local == "item" => {
                            item = Some((Item::default(), depth));
                        }
                        (Some((open, item_depth)), None) if depth == *item_depth + 1 => {
                            if wxr && local == "comment" {
                                open.comments.push(Comment::default());
                                comment_depth = Some(depth);
                            } else if let Some(field) = item_field(wxr, ns.is_none(), local) {
                                capture = Some((field, depth));
                                text.clear();
                            }
                        }
                        (Some(_), Some(comment_at)) if depth == comment_at + 1 && wxr => {
                            if let Some(field) = comment_field(local) {
                                capture = Some((field, depth));
                                text.clear();
                            }
                        }
                        _ => {}
                    }
                }
                if empty {
                    if let Some((field, at)) = capture
                        && at == depth
                        && let Some((open, _)) = &mut item
                    {
                        open.set(field, String::new());
                        capture = None;
                    }
                    depth -= 1;
                }
            }
            XmlEvent::Text(content) => {
                if capture.is_some() {
                    xml::append(&mut text, &content);
                }
            }
            XmlEvent::Close => {
                if let Some((field, at)) = capture {
                    if at == depth {
                        if let Some((open, _)) = &mut item {
                            open.set(field, std::mem::take(&mut text));
                        }
                        capture = None;
                    }
                } else if comment_depth == Some(depth) {
                    comment_depth = None;
                } else if item.as_ref().is_some_and(|(_, at)| *at == depth) {
                    finished = item.take().map(|(open, _)| open);
                }
                depth = depth.saturating_sub(1);
            }
            XmlEvent::Other => {}
            XmlEvent::Eof => break,
        }
        if let Some(done) = finished {
            add_item(done, uri_from, now, sink).await?;
            sink.progress(file.position());
        }
    }
    if depth != 0 || item.is_some() {
        return Err(file.malformed("the file ends inside an element (is it cut short?)"));
    }
    if !saw_wxr {
        return Err(file.malformed(
            "no element of the WordPress export namespace (http://wordpress.org/export/1.x/): \
             this is not a WXR file",
        ));
    }
    Ok(())
}

/// A WordPress date, `2020-01-31 14:05:00`; WordPress writes
/// `0000-00-00 00:00:00` for none, which is no date.
fn parse_date(value: &str) -> Option<OffsetDateTime> {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(value.trim(), format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Sends the comments of one finished item to the sink.
async fn add_item(
    item: Item,
    uri_from: UriFrom,
    now: OffsetDateTime,
    sink: &mut Sink,
) -> Result<(), ImportError> {
    let post = item.post_id.trim();
    let uri = match uri_from {
        UriFrom::Link => uri_of_link(&item.link),
        UriFrom::Guid => uri_of_link(&item.guid),
        UriFrom::Slug => {
            let slug = item.post_name.trim().trim_matches('/');
            (!slug.is_empty()).then(|| format!("/{slug}/"))
        }
    };
    if item.comment_status.trim() == "closed"
        && let Some(uri) = &uri
    {
        sink.closed_thread(uri, format!("{uri} (post {post})")).await?;
    }
    for comment in item.comments {
        let source_id = format!("wxr:{post}:{}", comment.id.trim());
        match comment.kind.trim() {
            "" | "comment" | "review" => {}
            "pingback" => {
                sink.skip(&source_id, "pingback (not a reader's comment)");
                continue;
            }
            "trackback" => {
                sink.skip(&source_id, "trackback (not a reader's comment)");
                continue;
            }
            other => {
                sink.skip(
                    &source_id,
                    format!("comment_type {other:?} (not a reader's comment)"),
                );
                continue;
            }
        }
        let Some(uri) = &uri else {
            sink.skip(
                &source_id,
                "its post has no usable address (see --uri-from link|guid|slug)",
            );
            continue;
        };
        let status = match comment.approved.trim() {
            "1" => Status::Approved,
            "0" => Status::Pending,
            "spam" => Status::Spam,
            "trash" | "post-trashed" => Status::Rejected,
            other => {
                sink.skip(&source_id, format!("unknown comment_approved {other:?}"));
                continue;
            }
        };
        let created_at = match parse_date(&comment.date_gmt) {
            Some(at) => at,
            None => match parse_date(&comment.date) {
                Some(at) => {
                    sink.warn(
                        &source_id,
                        "no comment_date_gmt: the local comment_date was taken as UTC",
                    );
                    at
                }
                None => {
                    sink.skip(&source_id, "no valid comment_date_gmt");
                    continue;
                }
            },
        };
        let parent = match comment.parent.trim() {
            "" | "0" => None,
            parent => Some(format!("wxr:{post}:{parent}")),
        };
        let moderated = status != Status::Pending;
        sink.record(SourceRecord {
            source_id,
            alias: None,
            parent,
            uri: uri.clone(),
            name: comment.author,
            email: comment.email,
            website: comment.url,
            body: Body::Html(comment.content),
            status,
            created_at,
            moderated_at: moderated.then_some(now),
            moderated_by: moderated.then(|| "import:wxr".to_owned()),
            ip: Some(comment.ip),
            user_agent: None,
            spam_score: None,
            spam_clues: SpamClues::default(),
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wxr_version_and_scheme_is_recognised_and_sub_namespaces_are_not() {
        for ns in [
            "http://wordpress.org/export/1.0/",
            "http://wordpress.org/export/1.1/",
            "https://wordpress.org/export/1.2/",
        ] {
            assert!(is_wxr_namespace(Some(ns)), "{ns}");
        }
        for ns in [
            "http://wordpress.org/export/1.2/excerpt/",
            "http://purl.org/rss/1.0/modules/content/",
            "http://wordpress.org/export/",
        ] {
            assert!(!is_wxr_namespace(Some(ns)), "{ns}");
        }
        assert!(!is_wxr_namespace(None));
    }

    #[test]
    fn dates_are_utc_and_the_zero_date_is_none() {
        let at = parse_date("2020-01-31 14:05:09").unwrap();
        assert_eq!(at.unix_timestamp(), 1_580_479_509);
        assert!(parse_date("0000-00-00 00:00:00").is_none());
    }
}
