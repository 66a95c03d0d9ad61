//! The tracing subscriber: human-readable lines on stderr, gathered in memory
//! and written by a background thread in batches, so neither a slow terminal
//! nor the per-request log line costs a request a system call.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
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

/// Installs the global subscriber. Keep the guard alive until exit: dropping
/// it writes what is still buffered.
pub fn init(filter: &str) -> LogGuard {
    let (writer, guard) = BatchedStderr::start();
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
