//! Our own export (`marginalia export`), read back line by line. Every
//! field is kept (status, dates, moderation, IP, user agent, source id)
//! except the ids, which the database gives anew: replies name their parent
//! by its id in the file, and are linked to whatever id it gets here. The
//! body is rendered again from its Markdown; `body_html` in the file is
//! never used. A comment without a source id gets `jsonl:<its id in the
//! file>`, so importing the same file twice adds nothing.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use time::OffsetDateTime;

use super::export::{FORMAT_NAME, Header, SCHEMA_VERSION};
use super::{Body, ImportError, Sink, SourceRecord};
use crate::domain::{SpamClues, Status};

/// The longest line read: a comment is at most 10,000 characters of
/// Markdown and 64 KiB of HTML.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// A comment line. Unknown fields are ignored, so an export of a newer
/// version with added fields still imports.
#[derive(Debug, Deserialize)]
struct Record {
    id: i64,
    uri: String,
    parent_id: Option<i64>,
    name: String,
    email: String,
    website: Option<String>,
    body: String,
    status: Status,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    moderated_at: Option<OffsetDateTime>,
    moderated_by: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    source_id: Option<String>,
    #[serde(default)]
    spam_score: Option<f64>,
    #[serde(default)]
    spam_clues: SpamClues,
}

pub async fn read(path: &std::path::Path, sink: &mut Sink) -> Result<(), ImportError> {
    let file = File::open(path).map_err(|error| anyhow::anyhow!("opening {}: {error}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut position = 0u64;
    let malformed = |number: u64, reason: &str| {
        ImportError::malformed(format!(
            "{} is malformed at line {number}: {reason}. Nothing was imported.",
            path.display()
        ))
    };
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?;
        if read == 0 {
            break;
        }
        number += 1;
        position += read as u64;
        if read as u64 > MAX_LINE_BYTES {
            return Err(malformed(number, "the line is longer than 1 MiB"));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| malformed(number, "not UTF-8"))?
            .trim();
        if number == 1 {
            let header: Header = serde_json::from_str(text).map_err(|error| {
                malformed(
                    1,
                    &format!("the first line must be the export's header ({{\"format\": \"{FORMAT_NAME}\", …}}): {error}"),
                )
            })?;
            if header.format != FORMAT_NAME {
                return Err(malformed(
                    1,
                    &format!("the format is {:?}, not {FORMAT_NAME:?}", header.format),
                ));
            }
            if header.version != SCHEMA_VERSION {
                return Err(malformed(
                    1,
                    &format!(
                        "schema version {} is not the one this marginalia reads ({SCHEMA_VERSION})",
                        header.version
                    ),
                ));
            }
            continue;
        }
        if text.is_empty() {
            continue;
        }
        let record: Record =
            serde_json::from_str(text).map_err(|error| malformed(number, &error.to_string()))?;
        let source_id = record
            .source_id
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| format!("jsonl:{}", record.id));
        sink.record(SourceRecord {
            alias: Some(format!("jsonl-id:{}", record.id)),
            parent: record.parent_id.map(|parent| format!("jsonl-id:{parent}")),
            source_id,
            uri: record.uri,
            name: record.name,
            email: record.email,
            website: record.website.unwrap_or_default(),
            body: Body::Markdown(record.body),
            status: record.status,
            created_at: record.created_at,
            moderated_at: record.moderated_at,
            moderated_by: record.moderated_by,
            ip: record.ip,
            user_agent: record.user_agent,
            spam_score: record.spam_score,
            spam_clues: record.spam_clues,
        })
        .await?;
        if number.is_multiple_of(1000) {
            sink.progress(position);
        }
    }
    if number == 0 {
        return Err(malformed(
            1,
            "the file is empty (an export starts with its header line)",
        ));
    }
    Ok(())
}
