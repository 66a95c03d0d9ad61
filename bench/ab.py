#!/usr/bin/env python3
"""Interleaved A/B rounds: two servers up side by side, wrk alternating between them.

    bench/run.sh --ab                          # the service against the floor, SQLite and PostgreSQL
    bench/run.sh --ab --pair binaries --a-bin OLD --b-bin NEW      # two builds, thread read and 304
    bench/run.sh --ab --pair rules             # submissions, moderation rules off (A) vs on (B)
    bench/run.sh --ab --pair notify [--webhook]   # submissions, notifications off vs on (the outbox)
    bench/run.sh --ab --pair filter            # submissions, learning filter unready vs trained (50 + 50)
    bench/run.sh --ab --pair env --b-env MARGINALIA_ACCESS_LOG=all   # any two settings
    bench/run.sh --ab --smoke                  # 2 rounds of 1 s, SQLite only: does it work at all

(or `python3 bench/ab.py ...` once the release binaries exist). Sequential
runs on a shared machine drift by tens of percent within an hour; rounds
taken side by side see the same machine, so their ratio holds even when the
absolute figures do not. Each round runs every scenario once on each side,
the order of the two sides swapped every round; a ratio is B / A of the same
round, and the report gives the median ratio over the rounds and its range.

Side A is the reference (the floor, the old binary, the feature off); side B
the candidate. Every service side gets its own database (a SQLite file in a
temporary folder, or a fresh PostgreSQL database that is dropped afterwards),
the service's default settings except a raised submission rate limit and an
admin token, and the same 50 approved comments on /bench/thread-50/, posted
and approved through the API (so any two builds can be compared, whatever
their migrations). `--a-env`/`--b-env KEY=VALUE` (repeatable) override either
side's environment, in every pair: e.g. `--pair filter --b-env
MARGINALIA_FILTER_SPAM_AT=0.8` once the learning filter takes that setting.

Scenarios (`--scenarios`, comma list):
  read    GET of the 50-comment thread (cache warm), 200; also the p99 ratio
  304     the same with If-None-Match
  write   POST /api/comments, each a distinct valid comment (bench/lua/write.lua);
          the figure is accepted submissions per second (202s). The floor
          reads the body and answers 202 at once.

Writes bench/out/ab-PAIR.csv (one row per backend and scenario: medians,
ratio median/min/max, p99 ratio, load average) and bench/out/ab-PAIR-rounds.csv
(every round), and bench/out/ab-PAIR.png (bench/plot.py --ab) when matplotlib
is installed. Environment: BENCH_WRK (default "-t2 -c32"), BENCH_PG_URL
(default postgres://postgres@127.0.0.1:5432).
"""

import argparse
import asyncio
import csv
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (  # noqa: E402  (bench.py sits next to this file)
    BENCH_THREAD,
    BENCH_THREAD_PATH,
    FLOOR,
    LUA,
    OUT,
    ROOT,
    SERVICE,
    Floor,
    Server,
    http,
    log,
    smtp_sink_session,
)

TOKEN = "ab-benchmark-token-" + os.urandom(8).hex()
BASE_ENV = {
    "MARGINALIA_ADMIN_TOKEN": TOKEN,
    "MARGINALIA_RATE_LIMIT_PER_MINUTE": "100000000",
    "MARGINALIA_RATE_LIMIT_BURST": "100000000",
}
# Rules that every submission is checked against and that the benchmark's
# comments pass (they would be held or refused otherwise, which is cheaper).
RULES = {
    "moderation": "known",
    "hold_links": 3,
    "held_words": ["loan", "casino", "bitcoin", "forex", "replica watches", "payday"],
    "blocked_words": ["viagra", "cialis", "crypto giveaway", "xxx", "porn", "escort service"],
}
SMTP_PORT_RANGE = (39250, 39350)

PAIRS = {
    # pair: (A label, B label, default scenarios)
    "floor": ("floor", "service", "read,304,write"),
    "binaries": ("old", "new", "read,304"),
    "rules": ("rules off", "rules on", "write"),
    "notify": ("notifications off", "notifications on", "write"),
    "filter": ("filter unready", "filter ready", "write"),
    "env": ("A", "B", "read,304,write"),
}


def parse_env(pairs):
    env = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"--a-env/--b-env take KEY=VALUE, not {pair!r}")
        env[key] = value
    return env


# ----- sinks for the notify pair (mail and webhook) --------------------------------------


class Sinks:
    """A local SMTP server that accepts every message and an HTTP server that
    answers 204 to every webhook call, both on a background event loop."""

    def __init__(self):
        self.mails = 0
        self.hooks = 0
        self.smtp_port = None
        self.hook_port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    async def _smtp(self, reader, writer):
        def count():
            self.mails += 1

        await smtp_sink_session(reader, writer, count)

    async def _hook(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                await reader.readexactly(length)
                self.hooks += 1
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, AttributeError):
            writer.close()

    def _run(self, ready):
        async def main():
            smtp = await asyncio.start_server(self._smtp, "127.0.0.1", 0)
            hook = await asyncio.start_server(self._hook, "127.0.0.1", 0)
            self.smtp_port = smtp.sockets[0].getsockname()[1]
            self.hook_port = hook.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())


# ----- one side --------------------------------------------------------------------------


def seed_bench_thread(base, token, label="service", timeout=10):
    """The 50 approved comments of BENCH_THREAD every service side starts
    with, posted and approved through the API (so any two builds compare,
    whatever their migrations). bench/read_cost.py seeds with it too."""
    auth = {"Authorization": f"Bearer {token}"}
    for i in range(50):
        comment = {
            "uri": BENCH_THREAD,
            "name": f"Reader {i}",
            "email": f"reader{i}@example.org",
            "body": f"Comment number {i}: thanks for the post, the part about *durable writes* matched what "
            f"we saw. We batch inserts now and the [numbers](https://example.org/n/{i}) are much better.",
        }
        status, _, body = http(
            "POST", base + "/api/comments", json.dumps(comment).encode(), {"Content-Type": "application/json"},
            timeout,
        )
        assert status == 202, f"{label}: seeding answered {status}: {body[:200]!r}"
        comment_id = json.loads(body)["id"]
        status, _, _ = http("POST", f"{base}/api/admin/comments/{comment_id}/approve", b"", auth, timeout)
        assert status == 200, f"{label}: approving answered {status}"


class ServiceSide:
    def __init__(self, ab, label, binary, env, backend, setup=None):
        self.label = label
        self.database_url = ab.fresh_database(backend, label)
        self.server = Server(
            f"ab-{backend}-{label.replace(' ', '-')}", self.database_url, ab.tmp, {**BASE_ENV, **env}, binary=binary
        )
        self.base = self.server.base
        self.pids = [self.server.pid]
        if setup:
            setup(self)
        self.seed()
        status, headers, self.thread_body = http("GET", self.base + BENCH_THREAD_PATH)
        assert status == 200, f"{label}: the thread read answered {status}"
        self.etag = headers.get("ETag") or headers.get("etag")

    def seed(self):
        seed_bench_thread(self.base, TOKEN, self.label)

    def stop(self):
        self.server.stop()


SPAM_EXAMPLES = 50


def train_spam(side, count):
    """Teaches side's learning filter `count` spam examples through the admin
    API, as moderators do; with the 50 approvals of `ServiceSide.seed` (ham)
    the model is then ready and judges every submission (issue #11)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    words = ["casino", "bonus", "crypto", "payday", "loan", "winner", "free", "spins", "viagra", "offer"]
    for i in range(count):
        comment = {
            "uri": "/bench-spam/",
            "name": f"Promo {i}",
            "email": f"promo{i}@spam.example",
            "website": f"https://spam{i}.example/",
            "body": f"Best {words[i % 10]} {words[(i + 3) % 10]} offer {i}: claim your {words[(i + 5) % 10]} "
            f"now at [our site](https://spam{i}.example/win) - {words[(i + 7) % 10]} today only!",
        }
        status, _, body = http(
            "POST", side.base + "/api/comments", json.dumps(comment).encode(), {"Content-Type": "application/json"}
        )
        assert status == 202, f"{side.label}: a spam example answered {status}: {body[:200]!r}"
        comment_id = json.loads(body)["id"]
        status, _, _ = http("POST", f"{side.base}/api/admin/comments/{comment_id}/spam", b"", auth)
        assert status == 200, f"{side.label}: marking spam answered {status}"


class FloorSide:
    def __init__(self, ab, label, service):
        body_file = ab.tmp / f"thread-{label}-{os.getpid()}.json"
        body_file.write_bytes(service.thread_body)
        self.label = label
        self.floor = Floor(body_file, ab.tmp)
        self.base = self.floor.base
        self.pids = [self.floor.pid]
        status, headers, body = http("GET", self.base + BENCH_THREAD_PATH)
        self.etag = headers.get("ETag") or headers.get("etag")
        assert body == service.thread_body and self.etag == service.etag, "the floor serves other bytes"

    def stop(self):
        self.floor.stop()


# ----- the A/B run -------------------------------------------------------------------------


class AB:
    def __init__(self, args):
        self.args = args
        self.pair = args.pair
        self.a_label, self.b_label, default_scenarios = PAIRS[args.pair]
        self.scenarios = [s.strip() for s in (args.scenarios or default_scenarios).split(",") if s.strip()]
        for scenario in self.scenarios:
            if scenario not in ("read", "304", "write"):
                sys.exit(f"unknown scenario {scenario!r} (read, 304, write)")
        self.rounds = args.rounds or (2 if args.smoke else 7)
        self.secs = args.secs or (1 if args.smoke else 5)
        self.backends = [
            b.strip() for b in (args.backends or ("sqlite" if args.smoke else "sqlite,postgres")).split(",") if b.strip()
        ]
        self.wrk_options = shlex.split(os.environ.get("BENCH_WRK", "-t2 -c32"))
        self.pg_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        self.tmp = Path(tempfile.mkdtemp(prefix="marginalia-ab-"))
        self.pg_databases = []
        self.sinks = None
        self.summary = []
        self.round_rows = []
        self.runs = 0
        OUT.mkdir(parents=True, exist_ok=True)

    # databases

    def psql(self, sql):
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", f"{self.pg_url}/postgres", "-c", sql],
            check=True, capture_output=True, text=True,
        )

    def fresh_database(self, backend, label):
        slug = re.sub(r"[^a-z0-9]+", "_", label.lower())
        if backend == "sqlite":
            return f"sqlite://{self.tmp}/{slug}-{len(self.pg_databases)}-{time.monotonic_ns()}.db"
        name = f"marginalia_ab_{os.getpid()}_{slug}"
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}")
        self.pg_databases.append(name)
        return f"{self.pg_url}/{name}"

    def drop_databases(self):
        for name in self.pg_databases:
            try:
                self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except subprocess.CalledProcessError as error:
                log(f"could not drop {name}: {error.stderr}")
        self.pg_databases.clear()

    # sides

    def side_env(self, side):
        args = self.args
        env = {}
        if side == "b":
            if self.pair == "notify":
                if self.sinks is None:
                    self.sinks = Sinks()
                env.update(
                    MARGINALIA_SMTP_URL=f"smtp://127.0.0.1:{self.sinks.smtp_port}?tls=none",
                    MARGINALIA_MAIL_FROM="Bench blog <comments@bench.example>",
                    MARGINALIA_NOTIFY_EMAILS="moderator@bench.example",
                )
                if args.webhook:
                    env.update(
                        MARGINALIA_WEBHOOK_URLS=f"http://127.0.0.1:{self.sinks.hook_port}/hook",
                        MARGINALIA_WEBHOOK_SECRET="bench-webhook-secret",
                    )
            elif self.pair == "rules":
                env["MARGINALIA_MODERATION"] = "known"
            elif self.pair == "filter":
                # The learning filter's switch (issue #11); a build that does not
                # know it ignores it, and the pair then measures noise only.
                env["MARGINALIA_FILTER_SPAM_AT"] = "0.9"
        env.update(parse_env(args.a_env if side == "a" else args.b_env))
        return env

    def start_sides(self, backend):
        args = self.args
        a_bin = Path(args.a_bin) if args.a_bin else SERVICE
        b_bin = Path(args.b_bin) if args.b_bin else SERVICE
        setup_b = None
        if self.pair == "rules":

            def setup_b(side):
                status, _, body = http(
                    "PUT", side.base + "/api/admin/rules", json.dumps(RULES).encode(),
                    {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
                )
                assert status == 200, f"PUT /api/admin/rules answered {status}: {body[:300]!r}"

        elif self.pair == "filter":

            def setup_b(side):
                train_spam(side, SPAM_EXAMPLES)

        b = ServiceSide(self, self.b_label, b_bin, self.side_env("b"), backend, setup_b)
        if self.pair == "floor":
            a = FloorSide(self, self.a_label, b)
        else:
            a = ServiceSide(self, self.a_label, a_bin, self.side_env("a"), backend)
        return a, b

    # load

    def wrk(self, side, scenario):
        url = side.base + ("/api/comments" if scenario == "write" else BENCH_THREAD_PATH)
        script = "write.lua" if scenario == "write" else "read.lua"
        self.runs += 1
        env = dict(
            os.environ, BENCH_LUA_DIR=str(LUA), BENCH_THREADS="1000", BENCH_COUNTER_START=str(self.runs * 1_000_000)
        )
        if scenario == "304":
            env["BENCH_ETAG"] = side.etag
        command = ["wrk", *self.wrk_options, f"-d{self.secs}s", "--latency", "-s", str(LUA / script), url]
        load1 = os.getloadavg()[0]
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        for line in result.stdout.splitlines():
            if line.startswith("WRKJSON "):
                data = json.loads(line[len("WRKJSON ") :])
                seconds = data["duration_us"] / 1e6
                ok = data["requests"] - data["status"]
                errors = data["status"] + data["connect"] + data["read"] + data["write"] + data["timeout"]
                return {
                    # Accepted submissions for writes; every answer for reads
                    # (a read that is not 200/304 counts as an error below).
                    "rps": ok / seconds,
                    "p99_ms": data["p99_us"] / 1000,
                    "errors": errors,
                    "load1": load1,
                }
        raise RuntimeError(f"no WRKJSON line from wrk ({' '.join(command)}):\n{result.stdout}{result.stderr}")

    def run_backend(self, backend):
        log(f"===== {self.pair}: {self.a_label} (A) vs {self.b_label} (B), {backend} =====")
        a, b = self.start_sides(backend)
        results = {s: [] for s in self.scenarios}
        try:
            for number in range(self.rounds):
                order = [("a", a), ("b", b)] if number % 2 == 0 else [("b", b), ("a", a)]
                for scenario in self.scenarios:
                    measured = {}
                    for name, side in order:
                        measured[name] = self.wrk(side, scenario)
                    ratio = measured["b"]["rps"] / measured["a"]["rps"] if measured["a"]["rps"] else float("nan")
                    p99_ratio = (
                        measured["b"]["p99_ms"] / measured["a"]["p99_ms"] if measured["a"]["p99_ms"] else float("nan")
                    )
                    results[scenario].append((measured["a"], measured["b"], ratio, p99_ratio))
                    self.round_rows.append(
                        {
                            "pair": self.pair, "backend": backend, "scenario": scenario, "round": number + 1,
                            "first": order[0][0].upper(),
                            "a_rps": round(measured["a"]["rps"], 1), "b_rps": round(measured["b"]["rps"], 1),
                            "ratio": round(ratio, 4),
                            "a_p99_ms": round(measured["a"]["p99_ms"], 3), "b_p99_ms": round(measured["b"]["p99_ms"], 3),
                            "p99_ratio": round(p99_ratio, 4),
                            "a_errors": measured["a"]["errors"], "b_errors": measured["b"]["errors"],
                            "load1": round(measured[order[0][0]]["load1"], 2),
                        }
                    )
                    log(
                        f"round {number + 1}/{self.rounds} {scenario:>5}: A {measured['a']['rps']:>9,.0f}/s  "
                        f"B {measured['b']['rps']:>9,.0f}/s  B/A {ratio:.3f}  p99 B/A {p99_ratio:.2f}  "
                        f"(load {measured[order[0][0]]['load1']:.2f})"
                    )
        finally:
            a.stop()
            b.stop()
        for scenario, runs in results.items():
            ratios = [r[2] for r in runs]
            loads = [r[0]["load1"] for r in runs] + [r[1]["load1"] for r in runs]
            self.summary.append(
                {
                    "pair": self.pair, "backend": backend, "scenario": scenario,
                    "a": self.a_label, "b": self.b_label,
                    "rounds": len(runs), "secs": self.secs, "wrk": " ".join(self.wrk_options),
                    "a_median_rps": round(statistics.median(r[0]["rps"] for r in runs), 1),
                    "b_median_rps": round(statistics.median(r[1]["rps"] for r in runs), 1),
                    "ratio_median": round(statistics.median(ratios), 4),
                    "ratio_min": round(min(ratios), 4),
                    "ratio_max": round(max(ratios), 4),
                    "p99_ratio_median": round(statistics.median(r[3] for r in runs), 4),
                    "a_p99_ms_median": round(statistics.median(r[0]["p99_ms"] for r in runs), 3),
                    "b_p99_ms_median": round(statistics.median(r[1]["p99_ms"] for r in runs), 3),
                    "errors": sum(r[0]["errors"] + r[1]["errors"] for r in runs),
                    "load_min": round(min(loads), 2),
                    "load_max": round(max(loads), 2),
                }
            )

    def report(self):
        fields = list(self.summary[0].keys()) if self.summary else []
        with open(OUT / f"ab-{self.pair}.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.summary)
        with open(OUT / f"ab-{self.pair}-rounds.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(self.round_rows[0].keys()) if self.round_rows else [])
            writer.writeheader()
            writer.writerows(self.round_rows)
        lines = [
            f"Interleaved A/B, pair {self.pair}: A = {self.a_label}, B = {self.b_label}; "
            f"{self.rounds} rounds of {self.secs} s, wrk {' '.join(self.wrk_options)}, order swapped every round",
            "",
            "| backend | scenario | A median/s | B median/s | B/A median | B/A range | p99 B/A median | errors | load avg |",
            "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
        ]
        for row in self.summary:
            lines.append(
                f"| {row['backend']} | {row['scenario']} | {row['a_median_rps']:,.0f} | {row['b_median_rps']:,.0f} | "
                f"**{row['ratio_median']:.3f}** | {row['ratio_min']:.3f}–{row['ratio_max']:.3f} | "
                f"{row['p99_ratio_median']:.2f} | {row['errors']} | {row['load_min']:.1f}–{row['load_max']:.1f} |"
            )
        if self.sinks:
            lines.append(f"\nthe sinks received {self.sinks.mails} mails and {self.sinks.hooks} webhook calls")
        lines.append(f"\nwrote {OUT / f'ab-{self.pair}.csv'} and {OUT / f'ab-{self.pair}-rounds.csv'}")
        print("\n".join(lines))

    def run(self):
        try:
            for backend in self.backends:
                self.run_backend(backend)
        finally:
            self.drop_databases()
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.report()
        plot = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "plot.py"), "--ab", str(OUT / f"ab-{self.pair}.csv"),
             str(OUT / f"ab-{self.pair}.png")],
            capture_output=True, text=True,
        )
        if plot.returncode != 0:
            log("no plot (is matplotlib installed?)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", choices=sorted(PAIRS), default="floor")
    parser.add_argument("--scenarios", help="comma list of read, 304, write (default per pair)")
    parser.add_argument("--rounds", type=int, help="rounds (default 7; --smoke: 2)")
    parser.add_argument("--secs", type=int, help="seconds per wrk run (default 5; --smoke: 1)")
    parser.add_argument("--backends", help='comma list, default "sqlite,postgres" (--smoke: "sqlite")')
    parser.add_argument("--a-bin", help="side A's binary (default target/release/marginalia)")
    parser.add_argument("--b-bin", help="side B's binary (default target/release/marginalia)")
    parser.add_argument("--a-env", action="append", metavar="KEY=VALUE", help="side A's environment (repeatable)")
    parser.add_argument("--b-env", action="append", metavar="KEY=VALUE", help="side B's environment (repeatable)")
    parser.add_argument("--webhook", action="store_true", help="notify pair: B also calls a webhook for every event")
    parser.add_argument("--smoke", action="store_true", help="2 rounds of 1 s, SQLite only")
    args = parser.parse_args()
    for binary in [SERVICE, FLOOR] + [Path(b) for b in (args.a_bin, args.b_bin) if b]:
        if not binary.exists():
            sys.exit(f"{binary} is missing: run bench/run.sh --ab, which builds it")
    AB(args).run()


if __name__ == "__main__":
    main()
