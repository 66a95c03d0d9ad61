//! Isso's database (one SQLite file), read directly and read-only, a page
//! of comments at a time. Isso keeps Markdown, so the text goes through the
//! same renderer as a submission.
//!
//! Modes: 1 (published) → approved, 2 (waiting) → pending; 4 is a comment
//! deleted in Isso, kept there only because it has replies and with its
//! text, name and website already erased: it is skipped, and its replies
//! become top-level comments. Isso has no spam status. An author without a
//! name is "Anonymous", one without an address gets a placeholder under
//! `isso.invalid`.

use time::OffsetDateTime;

use super::{Body, ImportError, Sink, SourceRecord};
use crate::domain::{SpamClues, Status};
use crate::store::{IssoComment, IssoFile};

/// Comments read per query.
const PAGE: i64 = 1000;

pub async fn read(path: &std::path::Path, sink: &mut Sink) -> Result<(), ImportError> {
    let now = OffsetDateTime::now_utc();
    let file = IssoFile::open(path).await?;
    let mut after = 0;
    let mut read = 0u64;
    loop {
        let page = file
            .page(after, PAGE)
            .await
            .map_err(|error| anyhow::anyhow!("reading the Isso database: {error}"))?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for comment in page {
            read += 1;
            add_comment(comment, now, sink).await?;
        }
        sink.progress(read);
    }
    file.close().await;
    Ok(())
}

async fn add_comment(comment: IssoComment, now: OffsetDateTime, sink: &mut Sink) -> Result<(), ImportError> {
    let source_id = format!("isso:{}", comment.id);
    let status = match comment.mode {
        1 => Status::Approved,
        2 => Status::Pending,
        4 => {
            sink.skip(
                &source_id,
                "deleted in Isso (mode 4: kept there only for its replies, text erased)",
            );
            return Ok(());
        }
        mode => {
            sink.skip(&source_id, format!("unknown Isso mode {mode}"));
            return Ok(());
        }
    };
    let Some(uri) = comment.uri else {
        sink.skip(&source_id, "its thread is missing from Isso's threads table");
        return Ok(());
    };
    let micros = (comment.created * 1e6).round();
    let created_at = if micros.is_finite() {
        OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000).ok()
    } else {
        None
    };
    let Some(created_at) = created_at else {
        sink.skip(&source_id, "no valid creation time");
        return Ok(());
    };
    let moderated = status != Status::Pending;
    sink.record(SourceRecord {
        source_id,
        alias: None,
        parent: comment.parent.map(|parent| format!("isso:{parent}")),
        uri,
        name: comment.author.unwrap_or_default(),
        email: comment.email.unwrap_or_default(),
        website: comment.website.unwrap_or_default(),
        body: Body::Markdown(comment.text.unwrap_or_default()),
        status,
        created_at,
        moderated_at: moderated.then_some(now),
        moderated_by: moderated.then(|| "import:isso".to_owned()),
        ip: comment.remote_addr,
        user_agent: None,
        spam_score: None,
        spam_clues: SpamClues::default(),
    })
    .await
}
