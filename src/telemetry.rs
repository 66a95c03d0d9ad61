//! The tracing subscriber: human-readable lines on stderr, gathered in memory
//! and written by a background thread in batches, so neither a slow terminal
//! nor the per-request log line costs a request a system call.
//!
//! The access log (one line per request, [`access_line`]) does not go through
//! `tracing`'s formatter: it is formatted by hand, in the same layout, with a
//! timestamp prefix cached per second, straight into the same buffer. On a
//! cached thread read that is the difference between a line costing 2–3 µs
//! and a fraction of one (BENCHMARKS.md, "Interleaved A/B").

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in memory before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// A batch this large is written at once, without waiting for the interval.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Past this much unwritten output (stderr is stuck), lines are dropped and
/// counted rather than letting memory grow or requests wait.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// The buffer the access log writes into; set by [`init`]. Unset (tests that
/// run the app in-process, tools), access lines go through `tracing`.
static ACCESS: OnceLock<Arc<Pending>> = OnceLock::new();

/// Installs the global subscriber. Keep the guard alive until exit: dropping
/// it writes what is still buffered.
pub fn init(filter: &str) -> LogGuard {
    let (writer, guard) = BatchedStderr::start();
    let _ = ACCESS.set(writer.pending.clone());
    // hyper reports every client that hangs up mid-request as an error; that is
    // the client's business, not an operator's.
    let filter = EnvFilter::try_new(format!("{filter},hyper=warn,hyper_util=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .compact()
        // Colours only for a person at a terminal; files and journals get
        // plain text (cheaper to write, easier to grep).
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    guard
}

/// `MARGINALIA_ACCESS_LOG`: which requests get an access-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessLog {
    /// Every request, at `info` (slow and 5xx ones at `warn`).
    All,
    /// Only requests answered with a 5xx or slower than the slow-request
    /// threshold, at `warn`.
    Errors,
}

/// What the access-log filter (`routes::routes`) needs from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogSettings {
    pub mode: AccessLog,
    /// A request taking this long or longer is logged (at `warn`) whatever the mode.
    pub slow: Duration,
}

/// The level of an access line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    Info,
    Warn,
}

impl AccessLevel {
    /// As `tracing-subscriber` pads it (right-aligned in five columns, after a space).
    fn label(self) -> &'static [u8] {
        match self {
            Self::Info => b"  INFO ",
            Self::Warn => b"  WARN ",
        }
    }
}

/// Writes one access line, in the layout of the subscriber's other lines:
/// `2026-12-02T10:21:39.038613Z  INFO request method="GET" route="/api/comments" status=200 latency_us=5314`.
/// `route` is a route template, never a path or query; `method` is what
/// hyper parsed, an HTTP token (no spaces, quotes or line breaks), so
/// neither can forge a line.
pub fn access_line(level: AccessLevel, method: &str, route: &str, status: u16, latency_us: u64) {
    let Some(pending) = ACCESS.get() else {
        match level {
            AccessLevel::Info => tracing::info!(method, route, status, latency_us, "request"),
            AccessLevel::Warn => tracing::warn!(method, route, status, latency_us, "request"),
        }
        return;
    };
    LINE.with(|line| {
        let mut line = line.borrow_mut();
        line.format(
            std::time::SystemTime::now(),
            level,
            method,
            route,
            status,
            latency_us,
        );
        let mut writer = LineWriter { pending };
        // LineWriter never fails; it drops and counts when stderr is stuck.
        let _ = writer.write(line.bytes());
    });
}

thread_local! {
    /// Each runtime thread formats its access lines here, then copies the
    /// line into the shared buffer under its lock.
    static LINE: RefCell<AccessLineBuf> = RefCell::new(AccessLineBuf::default());
}

/// One access line being formatted, and the timestamp up to the second it
/// was last formatted for (`2026-12-02T10:21:39.`), reused within that second.
#[derive(Default)]
struct AccessLineBuf {
    second: u64,
    prefix: Vec<u8>,
    line: Vec<u8>,
}

impl AccessLineBuf {
    fn format(
        &mut self,
        now: std::time::SystemTime,
        level: AccessLevel,
        method: &str,
        route: &str,
        status: u16,
        latency_us: u64,
    ) {
        let since_epoch = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let second = since_epoch.as_secs();
        if second != self.second || self.prefix.is_empty() {
            self.second = second;
            self.prefix.clear();
            let at = time::OffsetDateTime::from_unix_timestamp(second as i64)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let _ = write!(
                self.prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
        }
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(&self.prefix);
        push_padded(line, u64::from(since_epoch.subsec_micros()), 6);
        line.push(b'Z');
        line.extend_from_slice(level.label());
        line.extend_from_slice(b"request method=\"");
        line.extend_from_slice(method.as_bytes());
        line.extend_from_slice(b"\" route=\"");
        line.extend_from_slice(route.as_bytes());
        line.extend_from_slice(b"\" status=");
        push_padded(line, u64::from(status), 1);
        line.extend_from_slice(b" latency_us=");
        push_padded(line, latency_us, 1);
        line.push(b'\n');
    }

    fn bytes(&self) -> &[u8] {
        &self.line
    }
}

/// Appends `value` in decimal, zero-padded to at least `width` digits.
fn push_padded(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    while value > 0 || digits.len() - start < width.max(1) {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&digits[start..]);
}

/// Log output shared by the request threads (which append) and the writer
/// thread (which takes everything appended and writes it to stderr).
///
/// `tracing_appender::non_blocking` sends every line through a channel and
/// wakes its writer thread for each one; at tens of thousands of requests a
/// second those wake-ups cost more than the lines (BENCHMARKS.md). Here a line
/// is one short lock and a copy, and the writer wakes on a timer.
#[derive(Default)]
struct Pending {
    buffer: Mutex<Vec<u8>>,
    full: Condvar,
    closed: AtomicBool,
    dropped: AtomicU64,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while appending bytes leaves nothing inconsistent behind.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` handed to the subscriber.
#[derive(Clone)]
struct BatchedStderr {
    pending: Arc<Pending>,
}

impl BatchedStderr {
    fn start() -> (Self, LogGuard) {
        let pending = Arc::new(Pending::default());
        let writer = {
            let pending = pending.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || write_batches(&pending))
                .expect("spawning the log writer thread")
        };
        (
            Self {
                pending: pending.clone(),
            },
            LogGuard {
                pending,
                writer: Some(writer),
            },
        )
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            pending: &self.pending,
        }
    }
}

/// Appends one formatted event (the subscriber writes each in one call).
struct LineWriter<'a> {
    pending: &'a Pending,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.pending.lock();
        if buffer.len() + bytes.len() > MAX_PENDING {
            self.pending.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes.len());
        }
        let before = buffer.len();
        buffer.extend_from_slice(bytes);
        if before < FLUSH_THRESHOLD && buffer.len() >= FLUSH_THRESHOLD {
            self.pending.full.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer thread: every interval (or sooner when a batch is large), take
/// what was appended and write it out; after the guard closes, write the rest.
fn write_batches(pending: &Pending) {
    let mut stderr = std::io::stderr();
    // Two buffers swapped back and forth, so steady logging allocates nothing.
    let mut batch = Vec::with_capacity(FLUSH_THRESHOLD);
    loop {
        let closed = {
            let buffer = pending.lock();
            let (mut buffer, _) = pending
                .full
                .wait_timeout_while(buffer, FLUSH_INTERVAL, |buffer| {
                    buffer.len() < FLUSH_THRESHOLD && !pending.closed.load(Ordering::Acquire)
                })
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut *buffer, &mut batch);
            pending.closed.load(Ordering::Acquire)
        };
        let dropped = pending.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "WARN {dropped} log lines dropped: stderr is not keeping up"
            );
        }
        // Nowhere to report a failing stderr; the lines are lost either way.
        let _ = stderr.write_all(&batch);
        batch.clear();
        if closed {
            let rest = std::mem::take(&mut *pending.lock());
            let _ = stderr.write_all(&rest);
            let _ = stderr.flush();
            return;
        }
    }
}

/// Keeps the writer thread running; dropping it writes everything buffered.
pub struct LogGuard {
    pending: Arc<Pending>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.pending.closed.store(true, Ordering::Release);
        self.pending.full.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_line_has_the_layout_of_the_subscribers_lines() {
        let mut buf = AccessLineBuf::default();
        let at = std::time::UNIX_EPOCH + Duration::from_micros(1_764_671_299_038_613);
        buf.format(at, AccessLevel::Info, "GET", "/api/comments", 200, 5314);
        assert_eq!(
            std::str::from_utf8(buf.bytes()).unwrap(),
            "2025-12-02T10:28:19.038613Z  INFO request method=\"GET\" route=\"/api/comments\" status=200 latency_us=5314\n"
        );
        // Within the same second the cached prefix is reused; a new second renews it.
        buf.format(
            at + Duration::from_micros(7),
            AccessLevel::Warn,
            "POST",
            "other",
            503,
            0,
        );
        assert_eq!(
            std::str::from_utf8(buf.bytes()).unwrap(),
            "2025-12-02T10:28:19.038620Z  WARN request method=\"POST\" route=\"other\" status=503 latency_us=0\n"
        );
        buf.format(
            at + Duration::from_secs(61),
            AccessLevel::Info,
            "GET",
            "/healthz",
            200,
            12,
        );
        assert!(buf.bytes().starts_with(b"2025-12-02T10:29:20.038613Z  INFO "));
    }

    #[test]
    fn numbers_are_padded_only_to_the_width_asked() {
        let mut out = Vec::new();
        push_padded(&mut out, 0, 1);
        out.push(b' ');
        push_padded(&mut out, 42, 6);
        out.push(b' ');
        push_padded(&mut out, u64::MAX, 1);
        assert_eq!(out, b"0 000042 18446744073709551615");
    }

    #[test]
    fn lines_are_kept_whole_and_in_order_until_the_writer_takes_them() {
        let pending = Pending::default();
        let mut writer = LineWriter { pending: &pending };
        writer.write_all(b"first line\n").unwrap();
        writer.write_all(b"second line\n").unwrap();
        assert_eq!(&*pending.lock(), b"first line\nsecond line\n");
    }

    #[test]
    fn output_beyond_the_bound_is_dropped_and_counted() {
        let pending = Pending::default();
        let mut writer = LineWriter { pending: &pending };
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..5 {
            writer.write_all(&line).unwrap();
        }
        assert_eq!(pending.lock().len(), MAX_PENDING);
        assert_eq!(pending.dropped.load(Ordering::Relaxed), 1);
    }
}
