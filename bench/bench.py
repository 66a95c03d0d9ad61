#!/usr/bin/env python3
"""The marginalia benchmark driver (started by bench/run.sh, which builds first).

For each backend (SQLite in a temporary directory, PostgreSQL in a fresh
database that is dropped afterwards) it starts target/release/marginalia on
loopback, seeds it in bulk (target/release/examples/seed), and drives load with
wrk (scripts in bench/lua/). The floor (target/release/examples/floor) serves
the exact bytes of the service's benchmark-thread response from memory and is
measured in the same run, so that every figure has a ratio to it.

Scenarios (see issue 4 and BENCHMARKS.md):
  floor read / floor 304     the floor, 200 and If-None-Match -> 304
  read / read 304            GET /api/comments, 50 approved comments (~24 KB), default settings
  write                      POST /api/comments, each a distinct valid comment, rate limit raised
  mixed                      95 % reads over 1,000 threads, 5 % writes, approvals trickling in
  read x2 instances          PostgreSQL only: two instances on one database, wrk on each
  scale read @N / queue @N   the same thread read (thread cache off) and the first page of
                             the moderation queue, with N comments in 10,000 threads (one
                             database per N; sizes measured in alternation, median of 3 rounds)
  start-up @N                spawn -> first /healthz answer, on the N-comment database

Environment:
  BENCH_DURATION   seconds per wrk run (default 10; --smoke: 2)
  BENCH_SCALE      "full" adds the 1,000,000-comment step (default: 1,000 and 100,000)
  BENCH_BACKENDS   comma list, default "sqlite,postgres" (--smoke: "sqlite")
  BENCH_PG_URL     server URL without database, default postgres://postgres@127.0.0.1:5432
  BENCH_WRK        wrk options, default "-t2 -c32"
"""

import argparse
import csv
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
LUA = BENCH / "lua"
RELEASE = ROOT / "target" / "release"
SERVICE = RELEASE / "marginalia"
FLOOR = RELEASE / "examples" / "floor"
SEED = RELEASE / "examples" / "seed"
SWEEP = RELEASE / "examples" / "limiter_sweep"

BENCH_THREAD = "/bench/thread-50/"
BENCH_THREAD_PATH = "/api/comments?uri=" + BENCH_THREAD
QUEUE_PATH = "/api/admin/comments?status=pending"
ADMIN_TOKEN = "bench-admin-token-" + os.urandom(8).hex()
RAISED_LIMIT = {
    "MARGINALIA_RATE_LIMIT_PER_MINUTE": "100000000",
    "MARGINALIA_RATE_LIMIT_BURST": "100000000",
}
MIXED_THREADS = 1000
MIXED_COMMENTS = 20_000
SCALE_THREADS = 10_000


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss(pid):
    """Resets VmHWM to the current RSS (Linux >= 4.0), so that each scenario has its own peak."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def http(method, url, body=None, headers=None, timeout=10):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def smtp_sink_session(reader, writer, on_mail):
    """One SMTP conversation of a local sink that accepts every message and
    keeps none: calls `on_mail()` for each message received. Used by the
    benchmark scripts that need a mail server (bench/ab.py, bench/mem_peak.py)."""
    writer.write(b"220 sink ESMTP\r\n")
    in_data = False
    try:
        while line := await reader.readline():
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    on_mail()
                    writer.write(b"250 OK\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-sink\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                in_data = True
                writer.write(b"354 go on\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


class Server:
    """One marginalia process on loopback."""

    def __init__(self, name, database_url, workdir, env=None, binary=SERVICE):
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_") and k not in ("DATABASE_URL", "RUST_LOG")
        }
        full_env.update({"MARGINALIA_BIND": f"127.0.0.1:{self.port}", "MARGINALIA_DATABASE_URL": database_url})
        full_env.update(env or {})
        self.log_path = Path(workdir) / f"{name}.log"
        self.log_file = open(self.log_path, "ab")
        self.spawned = time.monotonic()
        # Logs at the default level (info, one line per request) go to a file,
        # as they would under systemd or Docker.
        self.process = subprocess.Popen(
            [str(binary), "serve"], env=full_env, cwd=workdir, stdout=self.log_file, stderr=self.log_file
        )
        self.startup_ms = self.wait_healthy()

    def wait_healthy(self, timeout=60):
        """Polls /healthz tightly; returns ms from spawn until it answered 200."""
        deadline = self.spawned + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                    answer = sock.recv(64)
                    if answer.startswith(b"HTTP/1.1 200"):
                        return (time.monotonic() - self.spawned) * 1000
            except OSError:
                pass
            time.sleep(0.001)
        raise RuntimeError(f"{self.name} did not answer /healthz within {timeout} s")

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


class Floor:
    def __init__(self, body_file, workdir):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = open(Path(workdir) / "floor.log", "ab")
        self.process = subprocess.Popen(
            [str(FLOOR), "--bind", f"127.0.0.1:{self.port}", "--body-file", str(body_file)],
            stdout=self.log_file,
            stderr=self.log_file,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("the floor did not start")

    @property
    def pid(self):
        return self.process.pid

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()


class Bench:
    def __init__(self, args):
        self.smoke = args.smoke
        self.duration = int(os.environ.get("BENCH_DURATION", "2" if self.smoke else "10"))
        self.wrk_options = shlex.split(os.environ.get("BENCH_WRK", "-t2 -c32"))
        default_backends = "sqlite" if self.smoke else "sqlite,postgres"
        self.backends = [b.strip() for b in os.environ.get("BENCH_BACKENDS", default_backends).split(",") if b.strip()]
        scale = os.environ.get("BENCH_SCALE", "")
        if self.smoke:
            self.sizes = [1000, 10_000]
        elif scale == "full":
            self.sizes = [1000, 100_000, 1_000_000]
        else:
            self.sizes = [1000, 100_000]
        self.pg_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
        self.rows = []
        self.startups = []
        self.seeds = []
        self.checks = []
        self.plans = []
        self.pg_databases = []
        self.fsyncs = []
        self.tmp = Path(tempfile.mkdtemp(prefix="marginalia-bench-"))
        self.run_id = os.getpid()
        OUT.mkdir(parents=True, exist_ok=True)
        for stale in OUT.glob("wrk-*.txt"):
            stale.unlink()

    # ----- databases -------------------------------------------------------

    def psql(self, database, sql, capture=False):
        return subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", f"{self.pg_url}/{database}", "-c", sql],
            check=True,
            capture_output=capture,
            text=True,
        )

    def fresh_database(self, backend, label):
        if backend == "sqlite":
            path = self.tmp / f"{label}.db"
            return f"sqlite://{path}"
        name = f"marginalia_bench_{self.run_id}" + ("" if label == "main" else f"_{label}")
        self.psql("postgres", f"DROP DATABASE IF EXISTS {name}")
        self.psql("postgres", f"CREATE DATABASE {name}")
        self.pg_databases.append(name)
        return f"{self.pg_url}/{name}"

    def drop_databases(self):
        for name in self.pg_databases:
            try:
                self.psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except subprocess.CalledProcessError as error:
                log(f"could not drop {name}: {error}")
        self.pg_databases.clear()

    def seed(self, backend, database_url, comments, threads, first_index=0, bench_thread=True):
        command = [
            str(SEED),
            "--database-url",
            database_url,
            "--comments",
            str(comments),
            "--threads",
            str(threads),
            "--first-index",
            str(first_index),
        ]
        if bench_thread:
            command += ["--bench-thread", BENCH_THREAD, "--bench-thread-comments", "50"]
        log(f"seeding {comments} comments over {threads} threads ({backend})")
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        line = result.stdout.strip().splitlines()[-1]
        log(line)
        rows_per_s = float(line.split(":")[1].split("rows/s")[0].strip())
        self.seeds.append({"backend": backend, "comments": comments, "rows_per_s": rows_per_s})

    # ----- load ------------------------------------------------------------

    def wrk(self, label, url, script, env=None, options=None, duration=None):
        command = ["wrk", *(options or self.wrk_options), f"-d{duration or self.duration}s", "--latency", "-s", str(LUA / script), url]
        full_env = dict(os.environ, BENCH_LUA_DIR=str(LUA), **(env or {}))
        result = subprocess.run(command, capture_output=True, text=True, env=full_env, cwd=ROOT)
        (OUT / f"wrk-{label}.txt").write_text(" ".join(command) + "\n\n" + result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"wrk failed for {label}: {result.stderr}")
        for line in result.stdout.splitlines():
            if line.startswith("WRKJSON "):
                data = json.loads(line[len("WRKJSON ") :])
                seconds = data["duration_us"] / 1e6
                errors = data["status"] + data["connect"] + data["read"] + data["write"] + data["timeout"]
                return {
                    "requests": data["requests"],
                    "rps": data["requests"] / seconds,
                    "ok_rps": (data["requests"] - data["status"]) / seconds,
                    "p50_ms": data["p50_us"] / 1000,
                    "p99_ms": data["p99_us"] / 1000,
                    "errors": errors,
                    "status_errors": data["status"],
                }
        raise RuntimeError(f"no WRKJSON line from wrk for {label}:\n{result.stdout}")

    def measure(
        self, scenario, backend, pids, url, script, env=None, options=None, db_comments="", note="", duration=None,
        record=True, label_suffix="",
    ):
        """One wrk run with the peak RSS of the server process(es) over it."""
        reset_ok = all(reset_peak_rss(pid) for pid in pids)
        label = f"{scenario}-{backend}{label_suffix}".replace(" ", "_").replace("@", "")
        load1 = os.getloadavg()[0]
        log(f"{scenario} ({backend}) for {duration or self.duration} s (load average {load1:.2f})")
        result = self.wrk(label, url, script, env=env, options=options, duration=duration)
        peak = max(proc_status_kib(pid, "VmHWM") for pid in pids) / 1024
        row = {
            "scenario": scenario,
            "backend": backend,
            "db_comments": db_comments,
            **result,
            "peak_rss_mib": peak,
            "peak_rss_scope": "scenario" if reset_ok else "process lifetime",
            "load1": load1,
            "note": note,
        }
        if record:
            self.rows.append(row)
        log(
            f"  {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
            f"{result['errors']} errors, peak RSS {peak:.1f} MiB"
        )
        return row

    def combine(self, scenario, backend, pids, runs, note):
        """Two wrk runs at once (one per instance) as one row."""
        reset_ok = all(reset_peak_rss(pid) for pid in pids)
        results = [None] * len(runs)

        def run(index, label, url, script, env, options):
            results[index] = self.wrk(label, url, script, env=env, options=options)

        load1 = os.getloadavg()[0]
        log(f"{scenario} ({backend}) for {self.duration} s (load average {load1:.2f})")
        workers = [threading.Thread(target=run, args=(i, *spec)) for i, spec in enumerate(runs)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        peak = max(proc_status_kib(pid, "VmHWM") for pid in pids) / 1024
        row = {
            "scenario": scenario,
            "backend": backend,
            "db_comments": "",
            "requests": sum(r["requests"] for r in results),
            "rps": sum(r["rps"] for r in results),
            "ok_rps": sum(r["ok_rps"] for r in results),
            # wrk cannot merge histograms across processes: the worse instance is shown.
            "p50_ms": max(r["p50_ms"] for r in results),
            "p99_ms": max(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "status_errors": sum(r["status_errors"] for r in results),
            "peak_rss_mib": peak,
            "peak_rss_scope": "scenario" if reset_ok else "process lifetime",
            "load1": load1,
            "note": note,
        }
        self.rows.append(row)
        log(f"  {row['rps']:.0f} req/s total, worst p99 {row['p99_ms']:.2f} ms, {row['errors']} errors")

    # ----- scenarios ---------------------------------------------------------

    def fsync_probe(self, count=200):
        """Mean latency of a 4 KiB write + fsync in the benchmark's temporary
        directory: what one durable commit costs on this disk, right now."""
        path = self.tmp / "fsync.probe"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            started = time.perf_counter()
            for _ in range(count):
                os.write(fd, b"x" * 4096)
                os.fsync(fd)
            mean_ms = (time.perf_counter() - started) / count * 1000
        finally:
            os.close(fd)
            path.unlink()
        self.checks.append(f"fsync probe before {len(self.fsyncs) + 1}. backend: {mean_ms:.2f} ms per 4 KiB write + fsync")
        self.fsyncs.append(mean_ms)
        log(self.checks[-1])
        return mean_ms

    def run_backend(self, backend):
        log(f"===== {backend} =====")
        self.fsync_probe()
        work = self.tmp / backend
        work.mkdir(exist_ok=True)
        database_url = self.fresh_database(backend, "main")
        self.seed(backend, database_url, MIXED_COMMENTS, MIXED_THREADS)

        # 1. The thread read, with the service's default settings (and the floor).
        server = Server(f"{backend}-default", database_url, work)
        try:
            status, headers, body = http("GET", server.base + BENCH_THREAD_PATH)
            assert status == 200, f"thread read answered {status}"
            etag = headers.get("ETag") or headers.get("etag")
            body_file = OUT / f"thread-{backend}.json"
            body_file.write_bytes(body)
            log(f"benchmark thread: {len(body)} bytes of JSON, ETag {etag}")
            floor = Floor(body_file, work)
            try:
                f_status, f_headers, f_body = http("GET", floor.base + BENCH_THREAD_PATH)
                assert f_body == body and (f_headers.get("ETag") or f_headers.get("etag")) == etag, "floor differs"
                self.measure("floor read", backend, [floor.pid], floor.base + BENCH_THREAD_PATH, "read.lua")
                self.measure(
                    "floor 304", backend, [floor.pid], floor.base + BENCH_THREAD_PATH, "read.lua", env={"BENCH_ETAG": etag}
                )
            finally:
                floor.stop()
            self.measure("read", backend, [server.pid], server.base + BENCH_THREAD_PATH, "read.lua", note="default settings")
            self.measure(
                "read 304",
                backend,
                [server.pid],
                server.base + BENCH_THREAD_PATH,
                "read.lua",
                env={"BENCH_ETAG": etag},
                note="If-None-Match",
            )
        finally:
            server.stop()

        # 2 and 3. Writes and the mixed run, with the rate limit raised.
        env = dict(RAISED_LIMIT, MARGINALIA_ADMIN_TOKEN=ADMIN_TOKEN)
        server = Server(f"{backend}-writes", database_url, work, env)
        try:
            self.write_run("write", backend, server, database_url, None)
            # Group commit: with more submitters in flight, each durable commit
            # (an fsync) carries more of them (the burst from a big site's link).
            self.write_run("write c256", backend, server, database_url, ["-t2", "-c256"])
            approvals = Approver(server.base)
            approvals.start()
            try:
                row = self.measure(
                    "mixed", backend, [server.pid], server.base + "/", "mixed.lua",
                    env={"BENCH_THREADS": str(MIXED_THREADS)}, note="95% reads / 5% writes",
                )
            finally:
                approvals.stop()
            row["note"] += f"; {approvals.approved} approvals during the run"
            if approvals.failures:
                row["note"] += f" ({approvals.failures} failed)"
        finally:
            server.stop()

        # Two instances on one PostgreSQL database.
        if backend == "postgres":
            self.two_instances(backend, database_url, work)

        # 4. Scale, thread cache off.
        self.scale(backend, work)

    def write_run(self, scenario, backend, server, database_url, options):
        """POST distinct comments; checks that every 202 is a stored row."""
        before = self.count_bench_writes(backend, database_url)
        connections = next((o[2:] for o in (options or self.wrk_options) if o.startswith("-c")), "?")
        row = self.measure(
            scenario, backend, [server.pid], server.base + "/api/comments", "write.lua",
            # A counter range per run: the second run on this database would otherwise repeat the first's comments.
            env={"BENCH_THREADS": "1000", "BENCH_COUNTER_START": str(len(self.rows) * 1_000_000)},
            options=options, note=f"distinct comments, rate limit raised, {connections} connections",
        )
        stored = self.count_bench_writes(backend, database_url) - before
        acknowledged = row["requests"] - row["status_errors"]
        row["note"] += f"; {stored} stored >= {acknowledged} acknowledged"
        self.checks.append(
            f"{backend}: {scenario} run acknowledged {acknowledged} comments (202); {stored} new rows in the "
            f"database afterwards ({'ok' if stored >= acknowledged else 'LOST WRITES'})"
        )

    def count_bench_writes(self, backend, database_url):
        sql = "SELECT COUNT(*) FROM comments WHERE email LIKE '%@bench.example'"
        if backend == "sqlite":
            with sqlite3.connect(database_url.removeprefix("sqlite://")) as db:
                return db.execute(sql).fetchone()[0]
        result = subprocess.run(
            ["psql", "-X", "-At", database_url, "-c", sql], check=True, capture_output=True, text=True
        )
        return int(result.stdout.strip())

    def two_instances(self, backend, database_url, work):
        env = {"MARGINALIA_ADMIN_TOKEN": ADMIN_TOKEN}
        a = Server(f"{backend}-instance-a", database_url, work, env)
        b = Server(f"{backend}-instance-b", database_url, work, env)
        try:
            # Warm both caches, then approve through A and time until B shows it.
            http("GET", a.base + BENCH_THREAD_PATH)
            http("GET", b.base + BENCH_THREAD_PATH)
            payload = json.dumps(
                {"uri": BENCH_THREAD, "name": "Cross-instance", "email": "x@bench.test", "body": "Seen on B?"}
            ).encode()
            status, _, body = http("POST", a.base + "/api/comments", payload, {"Content-Type": "application/json"})
            assert status == 202, f"submission through A answered {status}: {body!r}"
            comment_id = json.loads(body)["id"]
            status, _, _ = http(
                "POST",
                f"{a.base}/api/admin/comments/{comment_id}/approve",
                b"",
                {"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert status == 200, f"approval through A answered {status}"
            approved_at = time.monotonic()
            seen_ms = None
            while time.monotonic() - approved_at < 5:
                _, _, thread = http("GET", b.base + BENCH_THREAD_PATH)
                if any(c["id"] == comment_id for c in json.loads(thread)["comments"]):
                    seen_ms = (time.monotonic() - approved_at) * 1000
                    break
                time.sleep(0.005)
            self.checks.append(
                f"{backend}: an approval through instance A showed in instance B's thread read after "
                + (f"{seen_ms:.0f} ms" if seen_ms is not None else "MORE THAN 5 s (not seen)")
            )
            log(self.checks[-1])
            # Its body is now different: the floor ratio still uses the 50-comment floor.
            half = ["-t1", f"-c{max(1, self.connections() // 2)}"]
            self.combine(
                "read x2 instances",
                backend,
                [a.pid, b.pid],
                [
                    (f"read_x2_a-{backend}", a.base + BENCH_THREAD_PATH, "read.lua", {}, half),
                    (f"read_x2_b-{backend}", b.base + BENCH_THREAD_PATH, "read.lua", {}, half),
                ],
                note="one wrk -t1 per instance, same total connections; worst p50/p99",
            )
        finally:
            a.stop()
            b.stop()

    def connections(self):
        for option in self.wrk_options:
            if option.startswith("-c"):
                return int(option[2:])
        return 32

    def scale(self, backend, work):
        """One database per size, all seeded first; then the sizes are measured
        in alternation, several rounds, and each figure is the median of its
        rounds, so that a burst of load from elsewhere on the machine does not
        land on one size only."""
        env = {"MARGINALIA_THREAD_CACHE_BYTES": "0", "MARGINALIA_ADMIN_TOKEN": ADMIN_TOKEN}
        servers = {}
        databases = {}
        try:
            for size in self.sizes:
                database_url = self.fresh_database(backend, f"scale_{size}")
                databases[size] = database_url
                self.seed(backend, database_url, size, SCALE_THREADS)
                if backend == "postgres":
                    # What autovacuum would do on its own after a bulk load.
                    self.psql(database_url.rsplit("/", 1)[1], "VACUUM ANALYZE comments")
                startups = []
                for attempt in range(3):
                    server = Server(f"{backend}-scale-{size}", database_url, work, env)
                    startups.append(server.startup_ms)
                    if attempt < 2:
                        server.stop()
                servers[size] = server
                self.startups.append(
                    {"backend": backend, "db_comments": size, "startup_ms": statistics.median(startups)}
                )
                log(f"start-up on {size} comments: {', '.join(f'{s:.0f}' for s in startups)} ms")
                if backend == "postgres" and size == self.sizes[-1] and "sslmode" not in database_url:
                    # The same without TLS to the database, to show what the handshake costs.
                    plain = []
                    for _ in range(3):
                        probe = Server(f"{backend}-scale-{size}-notls", database_url + "?sslmode=disable", work, env)
                        plain.append(probe.startup_ms)
                        probe.stop()
                    self.startups.append(
                        {"backend": "postgres, sslmode=disable", "db_comments": size, "startup_ms": statistics.median(plain)}
                    )
                    log(f"start-up on {size} comments without TLS: {', '.join(f'{s:.0f}' for s in plain)} ms")

            rounds = 1 if self.smoke else 3
            duration = self.duration if self.smoke else max(2, self.duration // 2)
            kinds = [
                ("read", BENCH_THREAD_PATH, {}, "thread cache off"),
                ("queue", QUEUE_PATH, {"BENCH_TOKEN": ADMIN_TOKEN, "BENCH_PATH": QUEUE_PATH}, "first pending page (50)"),
            ]
            results = {}
            for round_number in range(rounds):
                for size in self.sizes:
                    for kind, path, wrk_env, note in kinds:
                        row = self.measure(
                            f"scale {kind} @{size}", backend, [servers[size].pid], servers[size].base + path,
                            "read.lua", env=wrk_env, db_comments=size, note=note, duration=duration,
                            record=False, label_suffix=f"-round{round_number + 1}",
                        )
                        results.setdefault((kind, size), []).append(row)
            for size in self.sizes:
                for kind, _, _, note in kinds:
                    runs = results[(kind, size)]
                    row = dict(runs[0])
                    for field in ("rps", "ok_rps", "p50_ms", "p99_ms", "load1"):
                        row[field] = statistics.median(r[field] for r in runs)
                    row["requests"] = sum(r["requests"] for r in runs)
                    row["errors"] = sum(r["errors"] for r in runs)
                    row["status_errors"] = sum(r["status_errors"] for r in runs)
                    row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
                    row["note"] = (
                        f"{note}; median of {len(runs)} rounds of {duration} s: "
                        + ", ".join(f"{r['rps']:.0f}" for r in runs)
                        + " req/s"
                    )
                    self.rows.append(row)
        finally:
            for server in servers.values():
                server.stop()
        largest = self.sizes[-1]
        self.explain(backend, databases[largest], largest)

    # ----- query plans -------------------------------------------------------

    def explain(self, backend, database_url, size):
        # The SQL text of src/store/sqlite.rs and src/store/postgres.rs.
        thread_sqlite = (
            "SELECT c.id, CASE WHEN p.id IS NULL THEN NULL ELSE c.parent_id END AS parent_id, "
            "c.name, c.website, c.body_html, c.created_at "
            "FROM comments c "
            "LEFT JOIN comments p ON p.id = c.parent_id AND p.status = 'approved' "
            "WHERE c.uri = ?1 AND c.status = 'approved' AND c.id > ?2 "
            "ORDER BY c.id LIMIT ?3"
        )
        total_sqlite = "SELECT COUNT(*) FROM comments WHERE uri = ?1 AND status = 'approved'"
        columns = (
            "id, uri, parent_id, name, email, website, body, body_html, status, created_at, "
            "moderated_at, moderated_by, ip, user_agent"
        )
        queue_sqlite = f"SELECT {columns} FROM comments WHERE status = ? ORDER BY id ASC LIMIT ?"
        header = f"===== {backend}: {size} comments in {SCALE_THREADS} threads =====\n"
        if backend == "sqlite":
            path = database_url.removeprefix("sqlite://")
            text = [header]
            with sqlite3.connect(path) as db:
                for title, sql, params in [
                    ("thread read (page)", thread_sqlite, (BENCH_THREAD, 0, 201)),
                    ("thread read (total)", total_sqlite, (BENCH_THREAD,)),
                    ("moderation queue, first page", queue_sqlite, ("pending", 51)),
                ]:
                    text.append(f"-- {title}\n{sql}\n")
                    for row in db.execute("EXPLAIN QUERY PLAN " + sql, params):
                        text.append(f"  {row[0]:>3} {row[1]:>3} {row[3]}")
                    started = time.perf_counter()
                    count = len(db.execute(sql, params).fetchall())
                    text.append(f"  ({count} rows in {(time.perf_counter() - started) * 1000:.2f} ms from python's sqlite3)\n")
            self.plans.append("\n".join(text))
            return
        database = database_url.rsplit("/", 1)[1]
        text = [header]
        for title, sql in [
            (
                "thread read (page)",
                thread_sqlite.replace("?1", f"'{BENCH_THREAD}'").replace("?2", "0").replace("?3", "201"),
            ),
            ("thread read (total)", total_sqlite.replace("?1", f"'{BENCH_THREAD}'")),
            ("moderation queue, first page", queue_sqlite.replace("= ?", "= 'pending'").replace("LIMIT ?", "LIMIT 51")),
        ]:
            result = self.psql(database, "EXPLAIN (ANALYZE, BUFFERS) " + sql, capture=True)
            text.append(f"-- {title}\n{sql}\n{result.stdout}")
        self.plans.append("\n".join(text))

    # ----- memory of the rate limiter ---------------------------------------

    def limiter_sweep(self):
        command = [str(SWEEP)]
        if self.smoke:
            command += ["--clients", "100000", "--per-minute", "60000000", "--burst", "1"]
        log("rate limiter sweep: " + " ".join(command[1:] or ["(defaults: 1,000,000 clients, 3/min burst 3)"]))
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        (OUT / "limiter_sweep.txt").write_text(result.stdout)
        log("\n" + result.stdout)
        return result.stdout

    # ----- report ------------------------------------------------------------

    def floors(self):
        floors = {}
        for row in self.rows:
            if row["scenario"].startswith("floor"):
                floors[(row["backend"], row["scenario"])] = row
        return floors

    def with_ratios(self):
        floors = self.floors()
        for row in self.rows:
            reference = "floor 304" if row["scenario"].endswith("304") else "floor read"
            floor = floors.get((row["backend"], reference))
            if floor and not row["scenario"].startswith("floor"):
                row["floor"] = reference
                row["rps_ratio"] = row["rps"] / floor["rps"] if floor["rps"] else float("nan")
                row["p99_ratio"] = row["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else float("nan")
            else:
                row["floor"] = ""
                row["rps_ratio"] = 1.0 if row["scenario"].startswith("floor") else float("nan")
                row["p99_ratio"] = 1.0 if row["scenario"].startswith("floor") else float("nan")
        return self.rows

    def table(self):
        lines = [
            "| scenario | backend | req/s | p50 ms | p99 ms | errors | peak RSS MiB | req/s ÷ floor | p99 ÷ floor |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in self.with_ratios():
            lines.append(
                f"| {row['scenario']} | {row['backend']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} | "
                f"{row['p99_ms']:.2f} | {row['errors']} | {row['peak_rss_mib']:.1f} | "
                f"{row['rps_ratio']:.2f} | {row['p99_ratio']:.2f} |"
            )
        return "\n".join(lines)

    def write_results(self, sweep_output):
        fields = [
            "scenario", "backend", "db_comments", "requests", "rps", "ok_rps", "p50_ms", "p99_ms", "errors",
            "status_errors", "peak_rss_mib", "peak_rss_scope", "floor", "rps_ratio", "p99_ratio", "load1", "note",
        ]
        table = self.table()
        with open(OUT / "results.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items() if k in fields})
        with open(OUT / "scale.csv", "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["backend", "kind", "db_comments", "rps", "p50_ms", "p99_ms", "peak_rss_mib"])
            for row in self.rows:
                if row["scenario"].startswith("scale"):
                    kind = row["scenario"].split()[1]
                    writer.writerow([row["backend"], kind, row["db_comments"], round(row["rps"], 1),
                                     round(row["p50_ms"], 3), round(row["p99_ms"], 3), round(row["peak_rss_mib"], 1)])
        with open(OUT / "startup.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=["backend", "db_comments", "startup_ms"])
            writer.writeheader()
            writer.writerows({**s, "startup_ms": round(s["startup_ms"], 1)} for s in self.startups)
        with open(OUT / "seed.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=["backend", "comments", "rows_per_s"])
            writer.writeheader()
            writer.writerows(self.seeds)
        (OUT / "plans.txt").write_text("\n\n".join(self.plans))

        summary = [table, "", "Start-up (spawn until /healthz answers, median of 3):"]
        summary += [f"  {s['backend']:<9} {s['db_comments']:>9,} comments: {s['startup_ms']:.0f} ms" for s in self.startups]
        summary += ["", "Checks:"] + [f"  {c}" for c in self.checks]
        summary += ["", "Seeding:"] + [f"  {s['backend']:<9} {s['comments']:>9,} comments: {s['rows_per_s']:,.0f} rows/s" for s in self.seeds]
        summary += ["", sweep_output.strip()]
        text = "\n".join(summary) + "\n"
        (OUT / "summary.md").write_text(
            f"wrk {' '.join(self.wrk_options)} -d{self.duration}s; scale sizes {self.sizes}; "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n\n" + text
        )
        print(text)

    def run(self):
        try:
            for backend in self.backends:
                self.run_backend(backend)
        finally:
            self.drop_databases()
        sweep = self.limiter_sweep()
        self.write_results(sweep)
        # A smoke run must not replace the published plot.
        plot_path = OUT / "scale.png" if self.smoke else ROOT / "docs" / "bench" / "scale.png"
        plot = subprocess.run([sys.executable, str(BENCH / "plot.py"), str(OUT / "scale.csv"), str(plot_path)])
        if plot.returncode != 0:
            log("plot.py failed (is matplotlib installed?)")
        shutil.rmtree(self.tmp, ignore_errors=True)


class Approver(threading.Thread):
    """Moderator approvals trickling in: the oldest pending comments, a few per second."""

    def __init__(self, base, per_second=10):
        super().__init__(daemon=True)
        self.base = base
        self.pause = 1 / per_second
        self.halt = threading.Event()
        self.approved = 0
        self.failures = 0

    def run(self):
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        while not self.halt.is_set():
            try:
                status, _, body = http("GET", self.base + "/api/admin/comments?status=pending&limit=20", headers=auth)
                ids = [c["id"] for c in json.loads(body)["comments"]] if status == 200 else []
                for comment_id in ids:
                    if self.halt.is_set():
                        break
                    status, _, _ = http("POST", f"{self.base}/api/admin/comments/{comment_id}/approve", b"", auth)
                    if status == 200:
                        self.approved += 1
                    else:
                        self.failures += 1
                    self.halt.wait(self.pause)
                if not ids:
                    self.halt.wait(self.pause)
            except (OSError, ValueError):
                self.failures += 1
                self.halt.wait(self.pause)

    def stop(self):
        self.halt.set()
        self.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="~2 s per scenario, SQLite only, small scale (for CI)")
    args = parser.parse_args()
    for binary in (SERVICE, FLOOR, SEED, SWEEP):
        if not binary.exists():
            sys.exit(f"{binary} is missing: run bench/run.sh, which builds it")
    Bench(args).run()


if __name__ == "__main__":
    main()
