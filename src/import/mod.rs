//! Importing comments from other systems, and exporting ours: one file per
//! source format (`wxr`: WordPress, `disqus`, `isso`, `jsonl`: our own
//! export) that streams its file into [`SourceRecord`]s, and this shared
//! part that turns each record into an [`ImportedComment`] through the same
//! domain parsers as the API (so the body is rendered and sanitized here,
//! never taken as HTML from the file), hands them in batches to the use case
//! `comments::import`, and keeps the [`Summary`]. `export` writes the JSON
//! Lines file that `jsonl` reads.
//!
//! The whole import is one transaction: a malformed file stops it with the
//! line and the reason, and nothing is kept; `--dry-run` runs it all and
//! rolls back. Memory stays flat whatever the file's size: the XML formats
//! are read as a stream of events, no XML element may exceed
//! 64 MiB (`xml::MAX_EVENT_BYTES`), rows go out in batches, and replies are linked
//! to their parents by the database at the end (so a reply may come first).
//!
//! It calls `comments` (the use case), `store` (the transaction, the Isso
//! file, the export) and `domain`, and takes its options' types from
//! `config`; nothing but the binary calls it.

mod disqus;
pub mod export;
mod isso;
mod jsonl;
mod wxr;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use time::OffsetDateTime;

use crate::comments;
use crate::domain::{AuthorName, CommentBody, Email, ImportedComment, SpamClues, Status, ThreadUri, Website};
use crate::store::{IMPORT_BATCH, ImportSession, Store};

pub use crate::config::{ImportFormat as Format, UriFrom};

/// The prefix of the source ids a format gives, and the word of `moderated_by`.
fn tag(format: Format) -> &'static str {
    match format {
        Format::Wxr => "wxr",
        Format::Disqus => "disqus",
        Format::Isso => "isso",
        Format::Jsonl => "jsonl",
    }
}

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Run everything, then roll back: the summary tells what would happen.
    pub dry_run: bool,
    pub uri_from: UriFrom,
}

/// Why an import stopped: the file cannot be read as its format says (with
/// the place in the file), or the database failed. Nothing was kept.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Comment(#[from] comments::CommentError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ImportError {
    fn malformed(message: impl Into<String>) -> Self {
        ImportError::Malformed(message.into())
    }
}

/// A comment as a format reader found it, before any check.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub source_id: String,
    pub alias: Option<String>,
    pub parent: Option<String>,
    pub uri: String,
    /// Empty when the source has no name (shown as "Anonymous").
    pub name: String,
    /// Empty when the source has none (a placeholder address is given).
    pub email: String,
    pub website: String,
    pub body: Body,
    pub status: Status,
    pub created_at: OffsetDateTime,
    pub moderated_at: Option<OffsetDateTime>,
    pub moderated_by: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The learning filter's score and clues, in our own export only.
    pub spam_score: Option<f64>,
    pub spam_clues: SpamClues,
}

/// A comment's text as its source keeps it.
#[derive(Debug, Clone)]
pub enum Body {
    /// WordPress and Disqus keep HTML.
    Html(String),
    /// Isso and our own export keep Markdown.
    Markdown(String),
}

/// The name given to a comment whose source has none, as WordPress shows it.
pub const ANONYMOUS: &str = "Anonymous";

/// The address given to a comment whose source has none: under `.invalid`, a
/// domain that can never receive mail (RFC 2606), so it is never mailed
/// (the outbox refuses such addresses) and, like every address, never
/// published.
pub fn placeholder_email(format: &str, id: &str) -> String {
    let local: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!("anonymous+{local}@{format}.invalid")
}

/// The path (and query) of a link, as a thread uri: `https://blog/a/?p=1`
/// → `/a/?p=1`. A link that is already a path is kept.
pub fn uri_of_link(link: &str) -> Option<String> {
    let link = link.trim();
    if link.starts_with('/') {
        return Some(link.to_owned());
    }
    let url = url::Url::parse(link).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let mut uri = url.path().to_owned();
    if let Some(query) = url.query() {
        uri.push('?');
        uri.push_str(query);
    }
    Some(uri)
}

/// WordPress's and Disqus's HTML as the Markdown source of a comment body:
/// Markdown passes inline HTML on to the same allow-list sanitizer as a
/// submission, so allowed tags (links, emphasis, code, quotes) survive and
/// everything else (scripts, handlers, styles) is removed. The tags
/// WordPress writes for emphasis that the allow-list spells otherwise are
/// renamed first, so bold stays bold.
fn html_source(html: &str) -> String {
    const RENAMES: [(&str, &str); 8] = [
        ("<b>", "<strong>"),
        ("</b>", "</strong>"),
        ("<i>", "<em>"),
        ("</i>", "</em>"),
        ("<s>", "<del>"),
        ("</s>", "</del>"),
        ("<strike>", "<del>"),
        ("</strike>", "</del>"),
    ];
    let mut text = html.replace("\r\n", "\n");
    for (from, to) in RENAMES {
        if text.contains(from) {
            text = text.replace(from, to);
        }
        let upper = from.to_ascii_uppercase();
        if text.contains(&upper) {
            text = text.replace(&upper, to);
        }
    }
    text
}

/// The longest user agent kept (as for a submission).
const MAX_USER_AGENT_CHARS: usize = 500;

impl SourceRecord {
    /// The record through the API's parsers. `Err` names the field and says
    /// what is wrong with it; a website the parser refuses is dropped with a
    /// warning instead (the field is optional), as is an IP that is not one.
    fn parse(self, format: &str, warnings: &mut Vec<String>) -> Result<ImportedComment, String> {
        let uri = ThreadUri::parse(&self.uri).map_err(|reason| format!("uri {:?} {reason}", self.uri))?;
        let name = if self.name.trim().is_empty() {
            ANONYMOUS
        } else {
            self.name.as_str()
        };
        let name = AuthorName::parse(name).map_err(|reason| format!("name {reason}"))?;
        let email = if self.email.trim().is_empty() {
            placeholder_email(format, self.source_id.split_once(':').map_or("", |(_, id)| id))
        } else {
            self.email.clone()
        };
        let email = Email::parse(&email).map_err(|reason| format!("email {reason}"))?;
        // WordPress stores `http://` for "no website".
        let website = match self.website.trim() {
            "" | "http://" | "https://" => None,
            website => match Website::parse(website) {
                Ok(website) => Some(website),
                Err(reason) => {
                    warnings.push(format!("website {website:?} dropped: {reason}"));
                    None
                }
            },
        };
        let source = match &self.body {
            Body::Html(html) => html_source(html),
            Body::Markdown(markdown) => markdown.replace("\r\n", "\n"),
        };
        let body = CommentBody::parse(&source).map_err(|reason| format!("text {reason}"))?;
        let ip = match self.ip.as_deref().map(str::trim).filter(|ip| !ip.is_empty()) {
            None => None,
            Some(ip) => match ip.parse::<IpAddr>() {
                Ok(ip) => Some(ip.to_string()),
                Err(_) => {
                    warnings.push(format!("IP {ip:?} dropped: not an IP address"));
                    None
                }
            },
        };
        let user_agent = self
            .user_agent
            .map(|agent| {
                agent
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .filter(|agent| !agent.is_empty());
        let moderated_by = self
            .moderated_by
            .map(|by| by.chars().filter(|c| !c.is_control()).take(200).collect());
        Ok(ImportedComment {
            source_id: self.source_id,
            alias: self.alias,
            parent: self.parent,
            uri,
            name,
            email,
            website,
            body,
            status: self.status,
            created_at: truncate_to_micros(self.created_at),
            moderated_at: self.moderated_at.map(truncate_to_micros),
            moderated_by,
            ip,
            user_agent,
            // A score that is no probability is not one.
            spam_score: self.spam_score.filter(|score| (0.0..=1.0).contains(score)),
            spam_clues: self.spam_clues,
        })
    }
}

/// A time at the precision both backends keep.
fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_microsecond(at.microsecond()).unwrap_or(at)
}

/// The most source ids listed for one reason or warning; the rest are counted.
const LISTED_IDS: usize = 20;

/// Source ids, the first 20 kept, all counted.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub count: u64,
    pub ids: Vec<String>,
}

impl Listed {
    fn add(&mut self, id: impl Into<String>) {
        self.count += 1;
        if self.ids.len() < LISTED_IDS {
            self.ids.push(id.into());
        }
    }
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub format: Option<&'static str>,
    pub dry_run: bool,
    /// Comments stored, by status.
    pub imported: BTreeMap<Status, u64>,
    /// Comments whose source id was stored already (an earlier import).
    pub already_present: u64,
    /// Comments not imported, by reason.
    pub skipped: BTreeMap<String, Listed>,
    /// Imported, but with something left out or changed, by what.
    pub warnings: BTreeMap<String, Listed>,
    /// Threads closed to comments in the source and closed here now
    /// (`uri (source id)`).
    pub closed_threads: Listed,
    /// Threads closed in the source on which a decision was stored already
    /// (an earlier import, or a moderator who reopened them): left as they are.
    pub already_decided: Listed,
    /// Replies whose parent could not be linked (`source id → parent`).
    pub unlinked: Listed,
}

impl Summary {
    pub fn imported_total(&self) -> u64 {
        self.imported.values().sum()
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().map(|listed| listed.count).sum()
    }

    fn skip(&mut self, id: &str, reason: impl Into<String>) {
        self.skipped.entry(reason.into()).or_default().add(id);
    }

    fn warn(&mut self, id: &str, warning: impl Into<String>) {
        self.warnings.entry(warning.into()).or_default().add(id);
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "Would import" } else { "Imported" };
        let by_status: Vec<String> = Status::ALL
            .iter()
            .map(|status| format!("{} {status}", self.imported.get(status).copied().unwrap_or(0)))
            .collect();
        writeln!(
            f,
            "{verb} {} comments from {}: {}.",
            self.imported_total(),
            self.format.unwrap_or("the file"),
            by_status.join(", ")
        )?;
        writeln!(f, "Already present (imported before): {}.", self.already_present)?;
        writeln!(f, "Skipped: {}.", self.skipped_total())?;
        let list = |f: &mut fmt::Formatter<'_>, listed: &Listed| {
            let more = listed.count.saturating_sub(listed.ids.len() as u64);
            let mut ids = listed.ids.join(", ");
            if more > 0 {
                ids.push_str(&format!(" and {more} more"));
            }
            writeln!(f, "      {ids}")
        };
        for (reason, listed) in &self.skipped {
            writeln!(f, "  - {} × {reason}", listed.count)?;
            list(f, listed)?;
        }
        if !self.warnings.is_empty() {
            writeln!(f, "Warnings:")?;
            for (warning, listed) in &self.warnings {
                writeln!(f, "  - {} × {warning}", listed.count)?;
                list(f, listed)?;
            }
        }
        if self.unlinked.count > 0 {
            writeln!(
                f,
                "Warning: {} replies are shown as top-level comments: their parent is not in the file, \
                 was skipped, is on another page, or is not older than the reply (reply → parent):",
                self.unlinked.count
            )?;
            list(f, &self.unlinked)?;
        }
        if self.closed_threads.count > 0 {
            let verb = if self.dry_run { "Would close" } else { "Closed" };
            writeln!(
                f,
                "{verb} {} threads, as they are closed to comments in the source:",
                self.closed_threads.count
            )?;
            list(f, &self.closed_threads)?;
        }
        if self.already_decided.count > 0 {
            writeln!(
                f,
                "Left as they are: {} threads closed in the source that were already closed or \
                 reopened here:",
                self.already_decided.count
            )?;
            list(f, &self.already_decided)?;
        }
        if self.dry_run {
            writeln!(f, "Dry run: nothing was written.")?;
        }
        Ok(())
    }
}

/// Where a format reader puts what it finds: records are parsed, batched and
/// stored; skips and warnings go to the summary.
pub struct Sink {
    format: Format,
    session: ImportSession,
    batch: Vec<ImportedComment>,
    summary: Summary,
    progress: ProgressBar,
    seen: u64,
}

impl Sink {
    /// A record from the file: parsed, then stored with the next batch, or
    /// skipped with the parser's reason.
    pub async fn record(&mut self, record: SourceRecord) -> Result<(), ImportError> {
        self.seen += 1;
        let id = record.source_id.clone();
        let mut warnings = Vec::new();
        match record.parse(tag(self.format), &mut warnings) {
            Ok(comment) => {
                for warning in warnings {
                    self.summary.warn(&id, warning);
                }
                self.batch.push(comment);
                if self.batch.len() >= IMPORT_BATCH {
                    self.flush().await?;
                }
            }
            Err(reason) => self.summary.skip(&id, format!("refused: {reason}")),
        }
        Ok(())
    }

    /// A record left out on purpose (a pingback, a deleted comment).
    pub fn skip(&mut self, id: &str, reason: impl Into<String>) {
        self.seen += 1;
        self.summary.skip(id, reason);
    }

    pub fn warn(&mut self, id: &str, warning: impl Into<String>) {
        self.summary.warn(id, warning);
    }

    /// A thread the source has closed to comments: closed here too, in the
    /// import's transaction, unless a decision on it is stored already (so a
    /// second import changes nothing, and never closes a thread a moderator
    /// reopened). A uri the parser refuses is left alone: its comments are
    /// refused too.
    pub async fn closed_thread(&mut self, uri: &str, description: String) -> Result<(), ImportError> {
        let Ok(uri) = ThreadUri::parse(uri) else {
            return Ok(());
        };
        let by = format!("import:{}", tag(self.format));
        let closed = self
            .session
            .close_thread(&uri, &by)
            .await
            .map_err(comments::CommentError::from)?;
        if closed {
            self.summary.closed_threads.add(description);
        } else {
            self.summary.already_decided.add(description);
        }
        Ok(())
    }

    /// Moves the progress bar to `position` (bytes or records read).
    pub fn progress(&self, position: u64) {
        self.progress.set_position(position);
        self.progress.set_message(format!("{} comments", self.seen));
    }

    async fn flush(&mut self) -> Result<(), ImportError> {
        let statuses = comments::import(&mut self.session, &self.batch).await?;
        self.summary.already_present += (self.batch.len() - statuses.len()) as u64;
        for status in statuses {
            *self.summary.imported.entry(status).or_default() += 1;
        }
        self.batch.clear();
        Ok(())
    }
}

/// Imports `path`, read as `format`, into `store`, and says what it did.
/// On any error nothing is kept.
pub async fn run(
    store: &Store,
    format: Format,
    path: &Path,
    options: Options,
) -> Result<Summary, ImportError> {
    let length = match format {
        Format::Isso => None,
        _ => Some(
            std::fs::metadata(path)
                .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?
                .len(),
        ),
    };
    let session = store.begin_import().await.map_err(comments::CommentError::from)?;
    let mut sink = Sink {
        format,
        session,
        batch: Vec::with_capacity(IMPORT_BATCH),
        summary: Summary {
            format: Some(tag(format)),
            dry_run: options.dry_run,
            ..Summary::default()
        },
        progress: progress_bar(length),
        seen: 0,
    };
    match format {
        Format::Wxr => wxr::read(path, options.uri_from, &mut sink).await?,
        Format::Disqus => disqus::read(path, &mut sink).await?,
        Format::Isso => isso::read(path, &mut sink).await?,
        Format::Jsonl => jsonl::read(path, &mut sink).await?,
    }
    sink.flush().await?;
    sink.progress.finish_and_clear();
    let links = comments::finish_import(sink.session, !options.dry_run).await?;
    let mut summary = sink.summary;
    summary.unlinked = Listed {
        count: u64::try_from(links.unlinked_count).unwrap_or(0),
        ids: links
            .unlinked
            .into_iter()
            .map(|(child, parent)| format!("{child} → {parent}"))
            .collect(),
    };
    Ok(summary)
}

/// A progress bar on stderr when it is a terminal (of bytes when `length` is
/// known), hidden otherwise, so logs and pipes get only the summary.
fn progress_bar(length: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match length {
        Some(length) => ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_paths_with_their_query() {
        assert_eq!(
            uri_of_link("https://blog.example/2020/01/hello/").as_deref(),
            Some("/2020/01/hello/")
        );
        assert_eq!(
            uri_of_link(" http://blog.example/?p=12 ").as_deref(),
            Some("/?p=12")
        );
        assert_eq!(
            uri_of_link("/already/a/path/").as_deref(),
            Some("/already/a/path/")
        );
        assert_eq!(uri_of_link("javascript:alert(1)"), None);
        assert_eq!(uri_of_link("not a link"), None);
    }

    #[test]
    fn placeholder_addresses_are_valid_and_undeliverable() {
        let address = placeholder_email("disqus", "123/4");
        assert_eq!(address, "anonymous+123-4@disqus.invalid");
        assert!(Email::parse(&address).is_ok());
    }

    #[test]
    fn wordpress_emphasis_is_renamed_to_the_allowed_tags() {
        assert_eq!(
            html_source("<b>a</b> <I>b</I>\r\n"),
            "<strong>a</strong> <em>b</em>\n"
        );
    }
}
