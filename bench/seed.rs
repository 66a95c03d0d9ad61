//! Bulk seeding for the benchmark: millions of comments without going through
//! HTTP, in large transactions (SQLite: one prepared statement per chunk;
//! PostgreSQL: `COPY`), with bodies rendered once by the service's own
//! Markdown renderer and sanitizer.
//!
//! ```text
//! cargo run --release --example seed -- --database-url sqlite:///tmp/b.db \
//!     --comments 100000 --threads 10000 --pending-fraction 0.05 \
//!     --bench-thread /bench/thread-50/ --bench-thread-comments 50
//! ```
//!
//! Comment `i` (counting from `--first-index`, so that several runs add to one
//! database without overlapping) goes to thread `/posts/{i % threads}/`, is
//! created 30 s after comment `i - 1`, and is pending for an evenly spread
//! `--pending-fraction` of the comments, approved otherwise. The benchmark
//! thread, when asked for, gets exactly `--bench-thread-comments` approved
//! comments before everything else. Prints rows/s on stdout.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use marginalia::domain::{CommentBody, Status};
use marginalia::store::{ImportComment, Store};
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug, Parser)]
#[command(about = "Seeds a marginalia database in bulk for the benchmark.")]
struct Args {
    /// `sqlite://PATH` or `postgres://…`; migrated first.
    #[arg(long, env = "MARGINALIA_DATABASE_URL")]
    database_url: String,
    /// How many comments to add, spread over the threads.
    #[arg(long, default_value_t = 1000)]
    comments: u64,
    /// How many threads (`/posts/0/` … `/posts/{threads-1}/`).
    #[arg(long, default_value_t = 10_000)]
    threads: u64,
    /// The share of the added comments left pending (the moderation queue).
    #[arg(long, default_value_t = 0.05)]
    pending_fraction: f64,
    /// Number the comments from here (use the count already seeded when adding
    /// to an existing database).
    #[arg(long, default_value_t = 0)]
    first_index: u64,
    /// A thread that gets exactly `--bench-thread-comments` approved comments.
    #[arg(long)]
    bench_thread: Option<String>,
    #[arg(long, default_value_t = 50)]
    bench_thread_comments: u64,
    /// Comments per transaction.
    #[arg(long, default_value_t = 50_000)]
    chunk: usize,
}

/// Realistic comment bodies: paragraphs, emphasis, links, code, a list, a quote.
/// Each renders to 300–600 bytes of HTML.
const BODIES: [&str; 8] = [
    "Thanks for writing this up. I ran into the same problem last year when we moved our \
     build to a new CI provider, and the *only* thing that helped was pinning the toolchain. \
     The [release notes](https://example.org/releases/1.2) say the same, if you read between the lines.\n\n\
     One question: did you try the `--locked` flag before pinning?",
    "I disagree with the second point.\n\n> Caching is always a win\n\n\
     Not when the invalidation is wrong: we served stale prices for a whole afternoon because of it. \
     **Measure first**, then cache, and keep the cache small enough to reason about. \
     There is a good talk about this at https://example.com/talks/caching.",
    "A few things that worked for us:\n\n\
     - keep the hot path free of allocations\n\
     - log less on success, more on failure\n\
     - make the slow query visible in `/metrics` before touching it\n\n\
     And of course: benchmark against something simple, so you know what *fast* means on your box.",
    "This is the clearest explanation of keyset pagination I have seen. We replaced \
     `OFFSET 100000` with `WHERE id > ?` and the admin page went from four seconds to a few \
     milliseconds. The [PostgreSQL docs](https://www.postgresql.org/docs/current/queries-limit.html) \
     even warn about it, but nobody reads them until it hurts.",
    "Small typo in the third code block: the closing brace is missing.\n\n\
     ```\nfn main() {\n    println!(\"hello\");\n}\n```\n\n\
     Otherwise a great post, I shared it with the whole team. Looking forward to the part about \
     deployment and rollbacks.",
    "I have been following this blog for years and this is one of the best posts. The bit about \
     *durability* in particular: an acknowledged write that is lost is worse than an error, \
     because nobody retries it. We learned that the hard way with a queue that acked before fsync. \
     ~~Never again.~~ Well, hopefully never again.",
    "Could you say more about the memory numbers? 64 MiB seems tight for a service with a cache, \
     but I suppose with a byte bound it is fine. On our side the allocator was the surprise: \
     switching it saved **30 %** of the resident set without any code change. Details in \
     [this issue](https://example.net/issues/4242).",
    "Nice. For anyone on older versions:\n\n\
     1. upgrade the driver first\n\
     2. then the server\n\
     3. and only then turn on the new protocol\n\n\
     Doing it in another order cost us a weekend. Also, `EXPLAIN ANALYZE` is your friend; \
     read the plan before adding an index.",
];

const NAMES: [&str; 10] = [
    "Ada Lovelace",
    "Grace H.",
    "Linus",
    "Margaret Hamilton",
    "Ken",
    "Barbara Liskov",
    "Edsger",
    "Frances Allen",
    "Dennis R.",
    "Radia Perlman",
];

struct Rendered {
    markdown: String,
    html: String,
}

fn render_bodies() -> anyhow::Result<Vec<Rendered>> {
    BODIES
        .iter()
        .map(|markdown| {
            let body = CommentBody::parse(markdown).map_err(|message| anyhow::anyhow!("body: {message}"))?;
            Ok(Rendered {
                markdown: body.markdown().to_owned(),
                html: body.html().to_owned(),
            })
        })
        .collect()
}

fn comment(
    index: u64,
    uri: String,
    status: Status,
    created_at: OffsetDateTime,
    bodies: &[Rendered],
) -> ImportComment {
    let body = &bodies[(index % bodies.len() as u64) as usize];
    let name = NAMES[(index % NAMES.len() as u64) as usize];
    ImportComment {
        uri,
        name: name.to_owned(),
        email: format!("reader{index}@example.org"),
        website: index
            .is_multiple_of(3)
            .then(|| format!("https://reader{index}.example.net/")),
        body: body.markdown.clone(),
        body_html: body.html.clone(),
        status,
        created_at,
    }
}

/// True for an evenly spread `fraction` of the indexes.
fn is_pending(index: u64, fraction: f64) -> bool {
    fraction > 0.0 && ((index + 1) as f64 * fraction).floor() > (index as f64 * fraction).floor()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.threads > 0, "--threads must be positive");
    anyhow::ensure!(args.chunk > 0, "--chunk must be positive");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.pending_fraction),
        "--pending-fraction must be between 0 and 1"
    );
    let store = Store::connect(&args.database_url)
        .await
        .with_context(|| format!("opening {}", Store::describe(&args.database_url)))?;
    store.migrate().await?;
    let bodies = render_bodies()?;
    let started = Instant::now();
    let mut inserted = 0u64;

    if let Some(uri) = &args.bench_thread {
        let base = datetime!(2023-12-01 00:00 UTC);
        let thread: Vec<ImportComment> = (0..args.bench_thread_comments)
            .map(|j| {
                let created_at = base + Duration::from_secs(60 * j);
                comment(j, uri.clone(), Status::Approved, created_at, &bodies)
            })
            .collect();
        inserted += store.bulk_import(&thread).await?;
    }

    let base = datetime!(2024-01-01 00:00 UTC);
    let end = args.first_index + args.comments;
    let mut next = args.first_index;
    let mut chunk = Vec::with_capacity(args.chunk);
    while next < end {
        let chunk_end = end.min(next + args.chunk as u64);
        chunk.clear();
        chunk.extend((next..chunk_end).map(|index| {
            let status = if is_pending(index, args.pending_fraction) {
                Status::Pending
            } else {
                Status::Approved
            };
            let uri = format!("/posts/{}/", index % args.threads);
            comment(
                index,
                uri,
                status,
                base + Duration::from_secs(30 * index),
                &bodies,
            )
        }));
        inserted += store.bulk_import(&chunk).await?;
        next = chunk_end;
        eprintln!("seed: {inserted} rows, {:.1} s", started.elapsed().as_secs_f64());
    }

    let elapsed = started.elapsed().as_secs_f64();
    store.close().await;
    println!(
        "seeded {inserted} comments in {elapsed:.2} s: {:.0} rows/s ({})",
        inserted as f64 / elapsed.max(1e-9),
        store.backend_name()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_pending;

    #[test]
    fn the_pending_fraction_is_spread_evenly() {
        assert_eq!((0..1000).filter(|&i| is_pending(i, 0.05)).count(), 50);
        assert_eq!((0..1000).filter(|&i| is_pending(i, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|&i| is_pending(i, 1.0)).count(), 1000);
    }
}
