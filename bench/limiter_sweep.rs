//! Memory of the submission rate limiter under a sweep of distinct clients.
//!
//! Feeds 1,000,000 distinct IPv4 addresses (by default) through
//! `marginalia::rate_limit::SubmissionLimiter::check`, as a botnet or a crawler
//! posting from many addresses would, then reads the peak (`VmHWM`) and current
//! (`VmRSS`) resident set from `/proc/self/status`, prunes, and reads `VmRSS`
//! again.
//!
//! governor's `retain_recent` only drops a client whose state is
//! indistinguishable from a fresh one: its theoretical arrival time must lie at
//! least one emission interval `t = 60 s / per_minute` in the past. After a
//! single submission that time is `t` ahead, so a client is dropped `2 t` after
//! its submission: 40 s with the service's defaults (3 per minute, burst 3).
//! The sweep waits that long (plus a margin) before pruning, as the service's
//! pruner (every 60 s) would find them. `--per-minute 60000000 --burst 1`
//! makes it a few microseconds, for a quick run.
//!
//! ```text
//! cargo run --release --example limiter_sweep -- --clients 1000000
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::FutureExt;
use marginalia::rate_limit::SubmissionLimiter;

#[derive(Debug, Parser)]
#[command(about = "Sweeps distinct client IPs through the submission limiter and reports memory.")]
struct Args {
    /// Distinct IPv4 clients.
    #[arg(long, default_value_t = 1_000_000)]
    clients: u32,
    /// The limiter's sustained rate (the service's default is 3).
    #[arg(long, default_value = "3")]
    per_minute: NonZeroU32,
    /// The limiter's burst (the service's default is 3).
    #[arg(long, default_value = "3")]
    burst: NonZeroU32,
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args = Args::parse();
    let limiter = SubmissionLimiter::new(args.per_minute, args.burst);
    let baseline = status_kib("VmRSS");

    let started = Instant::now();
    let mut refused = 0u64;
    // 11.0.0.0 onwards: public-looking, distinct, never sent anywhere.
    let first = u32::from(Ipv4Addr::new(11, 0, 0, 0));
    for offset in 0..args.clients {
        let client = IpAddr::V4(Ipv4Addr::from(first + offset));
        // In process only (no store given): the check's future is ready at
        // its first poll, so no runtime is needed to measure it.
        let checked = limiter
            .check(client)
            .now_or_never()
            .expect("ready at once in process");
        if checked.is_err() {
            refused += 1;
        }
    }
    let sweep = started.elapsed();
    let tracked = limiter.tracked_clients();
    let peak = status_kib("VmHWM");
    let after_sweep = status_kib("VmRSS");

    // A client is dropped two emission intervals after its one submission.
    let interval = Duration::from_secs_f64(60.0 / f64::from(args.per_minute.get()));
    let wait = 2 * interval + Duration::from_millis(500);
    eprintln!(
        "swept {} clients in {:.2} s; waiting {:.1} s until governor may drop them",
        args.clients,
        sweep.as_secs_f64(),
        wait.as_secs_f64()
    );
    std::thread::sleep(wait);
    let prune_started = Instant::now();
    limiter.prune().now_or_never().expect("ready at once in process");
    let prune_time = prune_started.elapsed();
    let after_prune = status_kib("VmRSS");
    let tracked_after = limiter.tracked_clients();

    println!(
        "limiter sweep: {} distinct IPv4 clients, quota {}/min burst {}",
        args.clients, args.per_minute, args.burst
    );
    println!(
        "  checks/s                 {:.0}",
        f64::from(args.clients) / sweep.as_secs_f64()
    );
    println!("  refused                  {refused}");
    println!("  RSS before               {:.1} MiB", mib(baseline));
    println!(
        "  peak RSS (VmHWM)         {:.1} MiB  (target < 160 MiB)",
        mib(peak)
    );
    println!(
        "  RSS after the sweep      {:.1} MiB  ({tracked} clients tracked)",
        mib(after_sweep)
    );
    println!(
        "  RSS after prune          {:.1} MiB  ({tracked_after} clients tracked; prune took {:.0} ms; target < 64 MiB)",
        mib(after_prune),
        prune_time.as_secs_f64() * 1000.0
    );
    println!(
        "RESULT clients={} peak_mib={:.1} after_sweep_mib={:.1} after_prune_mib={:.1} tracked_after_prune={} checks_per_s={:.0}",
        args.clients,
        mib(peak),
        mib(after_sweep),
        mib(after_prune),
        tracked_after,
        f64::from(args.clients) / sweep.as_secs_f64()
    );
}
