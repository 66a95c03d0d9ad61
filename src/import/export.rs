//! `marginalia export`: every comment with every field, as JSON Lines. The
//! first line is a header naming the format and its schema version; then one
//! comment per line, oldest id first. `marginalia import jsonl` reads it back
//! (docs/data.md describes the schema).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::Store;

/// The name in the header line of our export.
pub const FORMAT_NAME: &str = "marginalia-comments";

/// The schema version this build writes and reads. Raised when a field
/// changes meaning or is removed; added fields keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
}

/// Writes the export to `output`, or to standard output. Returns how many
/// comments it holds.
pub async fn write(store: &Store, output: Option<&Path>) -> anyhow::Result<u64> {
    let sink: Box<dyn Write> = match output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    let header = Header {
        format: FORMAT_NAME.to_owned(),
        version: SCHEMA_VERSION,
        exported_at: OffsetDateTime::now_utc(),
    };
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    let written = store
        .export_comments(|comment| {
            serde_json::to_writer(&mut out, comment)?;
            out.write_all(b"\n")
        })
        .await?;
    out.flush().context("writing the export")?;
    Ok(written)
}
