//! Disqus exports (XML, one file per site), read as a stream. `<thread>`s
//! give each thread's `link`, whose path is the thread uri; `<post>`s are the
//! comments, naming their thread and parent by Disqus id. A post whose thread
//! has not been seen yet waits (in memory) until the end of the file.
//!
//! Statuses: `isSpam` → spam, `isDeleted` → rejected, `isApproved` false →
//! pending, otherwise approved; deleted and spam posts are never approved.

use std::collections::HashMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::xml::{self, XmlEvent, XmlFile};
use super::{Body, ImportError, Sink, SourceRecord, uri_of_link};
use crate::domain::{SpamClues, Status};

const DISQUS_NAMESPACE: &str = "http://disqus.com";

/// The elements of a `<post>` that are kept.
const POST_FIELDS: [&str; 6] = [
    "message",
    "createdAt",
    "isDeleted",
    "isSpam",
    "isApproved",
    "ipAddress",
];
/// The elements of a post's `<author>` that are kept.
const AUTHOR_FIELDS: [&str; 3] = ["name", "email", "username"];
/// The elements of a `<thread>` that are kept.
const THREAD_FIELDS: [&str; 2] = ["link", "isClosed"];

#[derive(Debug, Default)]
struct Thread {
    id: String,
    link: String,
    closed: String,
}

#[derive(Debug, Default)]
struct Post {
    id: String,
    thread: String,
    parent: String,
    message: String,
    created_at: String,
    deleted: String,
    spam: String,
    approved: String,
    ip: String,
    name: String,
    email: String,
    username: String,
}

enum Open {
    Thread(Thread),
    Post(Box<Post>),
}

/// Reads a Disqus export into `sink`.
pub async fn read(path: &std::path::Path, sink: &mut Sink) -> Result<(), ImportError> {
    let now = OffsetDateTime::now_utc();
    let mut file = XmlFile::open(path)?;
    let mut depth = 0usize;
    let mut saw_root = false;
    let mut open: Option<Open> = None;
    // The field being read: its element's depth and where its text goes.
    let mut capture: Option<(usize, &'static str)> = None;
    let mut text = String::new();
    let mut threads: HashMap<String, Option<String>> = HashMap::new();
    let mut waiting: Vec<Post> = Vec::new();
    loop {
        let mut finished: Option<Open> = None;
        match file.next()? {
            XmlEvent::Open { ns, element, empty } => {
                depth += 1;
                let local = xml::local(&element);
                let disqus = ns == Some(DISQUS_NAMESPACE);
                if depth == 1 {
                    saw_root = disqus && local == "disqus";
                    if !saw_root {
                        return Err(file.malformed(
                            "the root element is not <disqus xmlns=\"http://disqus.com\">: \
                             this is not a Disqus export",
                        ));
                    }
                } else if depth == 2 && disqus {
                    let id = xml::attribute(&element, "id").unwrap_or_default();
                    open = match local {
                        "thread" => Some(Open::Thread(Thread {
                            id,
                            ..Thread::default()
                        })),
                        "post" => Some(Open::Post(Box::new(Post {
                            id,
                            ..Post::default()
                        }))),
                        _ => None,
                    };
                } else if disqus && capture.is_none() {
                    match (&mut open, depth, local) {
                        (Some(Open::Post(post)), 3, "thread") => {
                            post.thread = xml::attribute(&element, "id").unwrap_or_default();
                        }
                        (Some(Open::Post(post)), 3, "parent") => {
                            post.parent = xml::attribute(&element, "id").unwrap_or_default();
                        }
                        (Some(Open::Post(_)), 3, _)
                        | (Some(Open::Post(_)), 4, _)
                        | (Some(Open::Thread(_)), 3, _) => {
                            let kept = match (&open, depth) {
                                (Some(Open::Post(_)), 3) => POST_FIELDS.as_slice(),
                                (Some(Open::Post(_)), _) => AUTHOR_FIELDS.as_slice(),
                                _ => THREAD_FIELDS.as_slice(),
                            };
                            if let Some(field) = kept.iter().find(|field| **field == local) {
                                capture = Some((depth, field));
                                text.clear();
                            }
                        }
                        _ => {}
                    }
                }
                if empty {
                    if capture.is_some_and(|(at, _)| at == depth) {
                        capture = None;
                    }
                    if depth == 2 {
                        finished = open.take();
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
                if let Some((at, field)) = capture {
                    if at == depth {
                        let value = std::mem::take(&mut text);
                        match (&mut open, field) {
                            (Some(Open::Thread(thread)), "link") => thread.link = value,
                            (Some(Open::Thread(thread)), "isClosed") => thread.closed = value,
                            (Some(Open::Post(post)), "message") => post.message = value,
                            (Some(Open::Post(post)), "createdAt") => post.created_at = value,
                            (Some(Open::Post(post)), "isDeleted") => post.deleted = value,
                            (Some(Open::Post(post)), "isSpam") => post.spam = value,
                            (Some(Open::Post(post)), "isApproved") => post.approved = value,
                            (Some(Open::Post(post)), "ipAddress") => post.ip = value,
                            (Some(Open::Post(post)), "name") => post.name = value,
                            (Some(Open::Post(post)), "email") => post.email = value,
                            (Some(Open::Post(post)), "username") => post.username = value,
                            _ => {}
                        }
                        capture = None;
                    }
                } else if depth == 2 {
                    finished = open.take();
                }
                depth = depth.saturating_sub(1);
            }
            XmlEvent::Other => {}
            XmlEvent::Eof => break,
        }
        match finished {
            Some(Open::Thread(thread)) => {
                let uri = uri_of_link(&thread.link);
                if thread.closed.trim() == "true"
                    && let Some(uri) = &uri
                {
                    sink.closed_thread(uri, format!("{uri} (thread {})", thread.id))
                        .await?;
                }
                threads.insert(thread.id, uri);
            }
            Some(Open::Post(post)) => {
                if threads.contains_key(&post.thread) {
                    add_post(*post, &threads, now, sink).await?;
                } else {
                    waiting.push(*post);
                }
                sink.progress(file.position());
            }
            None => {}
        }
    }
    if depth != 0 {
        return Err(file.malformed("the file ends inside an element (is it cut short?)"));
    }
    if !saw_root {
        return Err(file.malformed("the file has no <disqus> element: this is not a Disqus export"));
    }
    for post in waiting {
        add_post(post, &threads, now, sink).await?;
    }
    Ok(())
}

fn is_true(value: &str) -> bool {
    value.trim() == "true"
}

async fn add_post(
    post: Post,
    threads: &HashMap<String, Option<String>>,
    now: OffsetDateTime,
    sink: &mut Sink,
) -> Result<(), ImportError> {
    let source_id = format!("disqus:{}", post.id.trim());
    let uri = match threads.get(&post.thread) {
        None => {
            sink.skip(&source_id, "its thread is not in the file");
            return Ok(());
        }
        Some(None) => {
            sink.skip(&source_id, "its thread has no usable <link>");
            return Ok(());
        }
        Some(Some(uri)) => uri.clone(),
    };
    let status = if is_true(&post.spam) {
        Status::Spam
    } else if is_true(&post.deleted) {
        Status::Rejected
    } else if post.approved.trim() == "false" {
        Status::Pending
    } else {
        Status::Approved
    };
    let Ok(created_at) = OffsetDateTime::parse(post.created_at.trim(), &Rfc3339) else {
        sink.skip(&source_id, "no valid createdAt");
        return Ok(());
    };
    let name = if post.name.trim().is_empty() {
        post.username
    } else {
        post.name
    };
    let parent = Some(post.parent.trim())
        .filter(|parent| !parent.is_empty())
        .map(|parent| format!("disqus:{parent}"));
    let moderated = status != Status::Pending;
    sink.record(SourceRecord {
        source_id,
        alias: None,
        parent,
        uri,
        name,
        email: post.email,
        website: String::new(),
        body: Body::Html(post.message),
        status,
        created_at,
        moderated_at: moderated.then_some(now),
        moderated_by: moderated.then(|| "import:disqus".to_owned()),
        ip: Some(post.ip),
        user_agent: None,
        spam_score: None,
        spam_clues: SpamClues::default(),
    })
    .await
}
