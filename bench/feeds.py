#!/usr/bin/env python3
"""Feed render time (issue #14): how long the service takes to answer the
Atom feeds (src/feeds.rs) with its cache of serialized pages on and off.

For each backend (SQLite, and PostgreSQL at BENCH_PG_SERVER), seeds a fresh
database with 100,000 approved and pending comments over 1,000 threads plus
the 50-comment benchmark thread (target/release/examples/seed), starts two
release servers on it — the default thread cache, and
MARGINALIA_THREAD_CACHE_BYTES=0 — and drives each feed with wrk over one
connection (so µs per request = 1 / requests per second) for ROUND_SECONDS,
in ROUNDS interleaved rounds (the order of the servers alternates). Cache
on, a request is answered from memory: what is left is HTTP and the
service's own per-request work. Cache off, every request reads the 50
newest entries from the database and renders the feed: the difference is
the cost of one render, query included.

    cargo build --release --locked --bin marginalia --example seed
    python3 bench/feeds.py        # about 2 minutes; prints a Markdown table

Run alone if you can: it reports the load average before and after.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # importing bench.py leaves no __pycache__ in bench/
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ADMIN_TOKEN, BENCH_THREAD, SEED, SERVICE, Server, http  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_FEED_ROUNDS", "5"))
ROUND_SECONDS = int(os.environ.get("BENCH_FEED_SECONDS", "3"))
COMMENTS = int(os.environ.get("BENCH_FEED_COMMENTS", "100000"))
THREADS = 1000
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "marginalia_feed_bench"
FEEDS = {
    "site-wide (`/feed/recent.atom`)": "/feed/recent.atom",
    "one thread (`/feed/thread.atom?uri=…`, 50 comments)": "/feed/thread.atom?uri=" + BENCH_THREAD,
}


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def seed(database_url):
    command = [str(SEED), "--database-url", database_url, "--comments", str(COMMENTS), "--threads", str(THREADS)]
    command += ["--bench-thread", BENCH_THREAD, "--bench-thread-comments", "50"]
    subprocess.run(command, check=True, capture_output=True, text=True)


def requests_per_second(base, path):
    """One wrk run over one connection; requests per second."""
    result = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{ROUND_SECONDS}s", base + path], check=True, capture_output=True, text=True
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        sys.exit(f"wrk saw errors on {path}:\n{result.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))


def measure(backend, database_url, workdir):
    env = {"MARGINALIA_ADMIN_TOKEN": ADMIN_TOKEN, "MARGINALIA_LOG": "warn"}
    servers = {
        "on": Server(f"{backend}-cache-on", database_url, workdir, env),
        "off": Server(f"{backend}-cache-off", database_url, workdir, {**env, "MARGINALIA_THREAD_CACHE_BYTES": "0"}),
    }
    try:
        sizes = {}
        for name, path in FEEDS.items():
            status, _, body = http("GET", servers["on"].base + path)
            assert status == 200 and body.count(b"<entry>") == 50, (path, status, body[:200])
            sizes[name] = len(body)
        samples = {(feed, cache): [] for feed in FEEDS for cache in servers}
        for round_ in range(ROUNDS):
            order = ["on", "off"] if round_ % 2 == 0 else ["off", "on"]
            for cache in order:
                for name, path in FEEDS.items():
                    samples[(name, cache)].append(1e6 / requests_per_second(servers[cache].base, path))
        return sizes, {key: statistics.median(values) for key, values in samples.items()}
    finally:
        for server in servers.values():
            server.stop()


def main():
    for binary in (SERVICE, SEED):
        if not binary.exists():
            sys.exit(f"{binary} is missing: cargo build --release --locked --bin marginalia --example seed")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        backends = [("SQLite", f"sqlite://{workdir}/feeds.db")]
        server, _ = PG_SERVER.rsplit("/", 1)
        backends.append(("PostgreSQL", f"{server}/{PG_DATABASE}"))
        for backend, url in backends:
            if backend == "PostgreSQL":
                subprocess.run(
                    ["psql", PG_SERVER, "-qc", f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)",
                     "-c", f"CREATE DATABASE {PG_DATABASE}"],
                    check=True,
                )
            before = loadavg()
            seed(url)
            sizes, medians = measure(backend, url, workdir)
            after = loadavg()
            for name in FEEDS:
                on, off = medians[(name, "on")], medians[(name, "off")]
                rows.append(
                    f"| {backend} | {name} | {sizes[name]:,} | {on:.0f} | {off:.0f} | {off - on:.0f} |"
                )
            print(f"{backend}: load average {before} before, {after} after", file=sys.stderr)
            if backend == "PostgreSQL":
                subprocess.run(
                    ["psql", PG_SERVER, "-qc", f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"], check=True
                )
    print(f"{COMMENTS:,} comments over {THREADS:,} threads; medians of {ROUNDS} interleaved rounds of "
          f"{ROUND_SECONDS} s over one connection\n")
    print("| backend | feed | bytes | µs per request, cache on | cache off | render (off − on) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
