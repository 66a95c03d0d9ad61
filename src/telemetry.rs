//! The tracing subscriber: human-readable lines on stderr, written by a
//! background thread so a slow terminal or pipe never stalls a request.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Keep the guard alive until exit: dropping
/// it flushes what is still buffered.
pub fn init(filter: &str) -> WorkerGuard {
    // The background writer flushes whenever it has drained its queue, so a
    // buffer turns a burst of request lines into one write instead of one
    // system call per line (which cost a third of a cached thread read).
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking(stderr);
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
