//! Reading an XML export safely, shared by the WordPress and Disqus readers:
//! a pull parser (quick-xml) over the file, one event at a time, so memory
//! does not grow with the file.
//!
//! What a hostile file cannot do here: make us read anything but itself
//! (quick-xml resolves no external entity, DTD or schema); expand entities
//! (a document type that declares any is refused at once, so a "billion
//! laughs" file stops before its first expansion, and only XML's five
//! predefined entities and character references are understood); or make
//! one element fill the memory (no event may span more than
//! [`MAX_EVENT_BYTES`]).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::ImportError;

/// The most bytes one XML event (an element's start tag, a run of text, a
/// CDATA section, the document type) may span. A post's text in WordPress
/// is the largest thing an export holds; comments are at most 10,000
/// characters.
pub const MAX_EVENT_BYTES: u64 = 64 << 20;

/// The file, counting what the parser consumes: in all, for the progress
/// bar, and since the last event, for the size limit.
struct Guarded {
    inner: BufReader<File>,
    since_event: u64,
    total: u64,
}

impl Read for Guarded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.since_event += read as u64;
        self.total += read as u64;
        Ok(read)
    }
}

impl BufRead for Guarded {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since_event > MAX_EVENT_BYTES {
            return Err(io::Error::other(format!(
                "an XML element or text is larger than {} MiB",
                MAX_EVENT_BYTES >> 20
            )));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.since_event += amount as u64;
        self.total += amount as u64;
        self.inner.consume(amount);
    }
}

/// One step through the document.
pub enum XmlEvent<'a> {
    /// An element starts (`empty`: it also ends, `<a/>`). `ns` is its
    /// namespace URI, if it has one.
    Open {
        ns: Option<&'a str>,
        element: BytesStart<'a>,
        empty: bool,
    },
    /// An element ends (quick-xml checks that it is the one that was open).
    Close,
    /// Character data: text, a CDATA section or a resolved reference.
    Text(Cow<'a, str>),
    /// A comment, a processing instruction, the declaration or a harmless
    /// document type: nothing to read.
    Other,
    Eof,
}

/// An XML file being read.
pub struct XmlFile {
    reader: NsReader<Guarded>,
    buf: Vec<u8>,
    path: PathBuf,
}

impl XmlFile {
    pub fn open(path: &Path) -> Result<Self, ImportError> {
        let file =
            File::open(path).map_err(|error| anyhow::anyhow!("opening {}: {error}", path.display()))?;
        let mut reader = NsReader::from_reader(Guarded {
            inner: BufReader::with_capacity(1 << 16, file),
            since_event: 0,
            total: 0,
        });
        let config = reader.config_mut();
        config.check_end_names = true;
        config.trim_text_start = false;
        config.trim_text_end = false;
        Ok(XmlFile {
            reader,
            buf: Vec::with_capacity(1 << 12),
            path: path.to_owned(),
        })
    }

    /// Bytes of the file read so far.
    pub fn position(&self) -> u64 {
        self.reader.get_ref().total
    }

    /// The next event. Comments, processing instructions and the XML
    /// declaration are [`XmlEvent::Other`]; a document type that declares entities,
    /// an unknown entity and any syntax error stop the import, saying where.
    pub fn next(&mut self) -> Result<XmlEvent<'_>, ImportError> {
        self.buf.clear();
        self.reader.get_mut().since_event = 0;
        // Where this event starts: errors are reported there (the
        // event's borrow of the reader rules out asking it afterwards).
        let at = self.reader.buffer_position();
        // Split borrows: the event borrows `buf`, the namespace the reader.
        let (resolved, event) = match self.reader.read_resolved_event_into(&mut self.buf) {
            Ok(pair) => pair,
            Err(error) => {
                return Err(malformed_at(&self.path, at, &error.to_string()));
            }
        };
        let ns = match resolved {
            ResolveResult::Bound(namespace) => Some(namespace.0),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                let message = format!("the namespace prefix {prefix:?} is not declared");
                return Err(malformed_at(&self.path, at, &message));
            }
        };
        Ok(match event {
            Event::Start(element) => XmlEvent::Open {
                ns,
                element,
                empty: false,
            },
            Event::Empty(element) => XmlEvent::Open {
                ns,
                element,
                empty: true,
            },
            Event::End(_) => XmlEvent::Close,
            Event::Text(text) => XmlEvent::Text(text.xml10_content()),
            Event::CData(data) => XmlEvent::Text(data.xml10_content()),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(Cow::Owned(c.to_string())),
                    Ok(None) => resolve_predefined_entity(&reference).map(Cow::Borrowed),
                    Err(_) => None,
                };
                match resolved {
                    Some(text) => XmlEvent::Text(text),
                    None => {
                        let message = format!(
                            "the entity &{}; is not one of XML's own (&amp; &lt; &gt; &quot; &apos;) \
                                 nor a character reference; entities are not expanded",
                            &*reference
                        );
                        return Err(malformed_at(&self.path, at, &message));
                    }
                }
            }
            Event::DocType(doctype) => {
                if doctype.xml10_content().contains("ENTITY") {
                    return Err(malformed_at(
                        &self.path,
                        at,
                        "the document type declares entities (<!ENTITY …>); such files are refused, \
                             since expanding entities can take unbounded memory (\"billion laughs\"), \
                             and no WordPress or Disqus export declares any",
                    ));
                }
                XmlEvent::Other
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => XmlEvent::Other,
            Event::Eof => XmlEvent::Eof,
        })
    }

    /// An error about the file at the current position.
    pub fn malformed(&self, message: &str) -> ImportError {
        malformed_at(&self.path, self.reader.buffer_position(), message)
    }
}

/// An element's local name (`wp:comment` → `comment`).
pub fn local<'e>(element: &'e BytesStart<'_>) -> &'e str {
    element.local_name().into_inner()
}

/// Appends character data to a field being read, up to [`MAX_FIELD_BYTES`]
/// (the rest is dropped: no field we keep is that long, and a value cut
/// there is refused by its parser anyway).
pub fn append(field: &mut String, text: &str) {
    if field.len() >= MAX_FIELD_BYTES {
        return;
    }
    let room = MAX_FIELD_BYTES - field.len();
    if text.len() <= room {
        field.push_str(text);
    } else {
        let mut end = room;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        field.push_str(&text[..end]);
    }
}

/// The most bytes kept of one field (a comment's text is at most 10,000
/// characters, so at most 40,000 bytes).
pub const MAX_FIELD_BYTES: usize = 1 << 20;

/// The value of the attribute whose local name is `local` (`dsq:id` → `id`),
/// with XML's own entities resolved.
pub fn attribute(element: &BytesStart<'_>, local: &str) -> Option<String> {
    element.attributes().flatten().find_map(|attribute| {
        (attribute.key.local_name().into_inner() == local)
            .then(|| attribute.normalized_value(XmlVersion::Implicit1_0).ok())
            .flatten()
            .map(Cow::into_owned)
    })
}

/// "malformed at line L, column C (byte B): reason". The line is counted by
/// reading the file again up to `offset`, only when an error is reported.
fn malformed_at(path: &Path, offset: u64, message: &str) -> ImportError {
    let (line, column) = line_and_column(path, offset).unwrap_or((0, 0));
    ImportError::malformed(format!(
        "{} is malformed at line {line}, column {column} (byte {offset}): {message}. Nothing was imported.",
        path.display()
    ))
}

fn line_and_column(path: &Path, offset: u64) -> io::Result<(u64, u64)> {
    let mut reader = BufReader::new(File::open(path)?).take(offset);
    let (mut line, mut column) = (1u64, 1u64);
    let mut chunk = [0u8; 1 << 16];
    loop {
        let read = reader.read(&mut chunk)?;
        if read == 0 {
            return Ok((line, column));
        }
        for &byte in &chunk[..read] {
            if byte == b'\n' {
                line += 1;
                column = 1;
            } else if byte & 0xC0 != 0x80 {
                column += 1;
            }
        }
    }
}
