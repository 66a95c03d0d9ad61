#!/usr/bin/env python3
"""User-space instructions per cached thread read, the service against the floor.

Wall-clock rates on a shared two-core machine drift by tens of percent; the
instructions a server executes for one request do not. This starts the
service (SQLite in a temporary folder, default settings, the 50 approved
comments of bench/ab.py posted and approved through the API) and the floor
(serving the service's exact bytes) each under `valgrind --tool=callgrind`
with instrumentation off, warms both up, then for each scenario switches
instrumentation on, sends N requests over one keep-alive connection, and
dumps the counters: instructions per request = the dump's total / N. Every
thread of the process counts (the runtime's workers, the timer, the log
writer), so what runs beside a request and is paid because of it is in the
figure; what the kernel does is not (the floor pays the same).

    python3 bench/read_cost.py                       # both binaries of target/release
    python3 bench/read_cost.py --service OLD_BINARY  # another build of the service
    python3 bench/read_cost.py --annotate 25         # and the top 25 functions of each dump
    python3 bench/read_cost.py --origin https://blog.example   # a cross-origin read, as from the widget

Scenarios: `read` (GET of the thread, 200, ~24 KB) and `304` (the same with
If-None-Match). Needs valgrind (callgrind_control, callgrind_annotate) and the
release binaries (`cargo build --release --bin marginalia --example floor`).
The callgrind files stay in bench/out/callgrind/ for callgrind_annotate.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab import seed_bench_thread  # noqa: E402
from bench import BENCH_THREAD_PATH, FLOOR, OUT, SERVICE, free_port, http  # noqa: E402

TOKEN = "read-cost-token-" + os.urandom(8).hex()
SCENARIOS = ("read", "304")


def log(message):
    print(f"[read_cost {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Client:
    """One keep-alive HTTP/1.1 connection; reads each answer whole."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self, path, headers=()):
        lines = [f"GET {path} HTTP/1.1", "Host: bench"] + [f"{k}: {v}" for k, v in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(match.group(1)) if match and status != 304 else 0
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, head, body

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self.buffer += chunk

    def close(self):
        self.sock.close()


class Callgrinded:
    """A server process under callgrind, instrumentation off until asked."""

    def __init__(self, name, argv, env, workdir, out_dir):
        self.name = name
        self.out_dir = out_dir
        self.out_base = out_dir / f"callgrind.{name}"
        for old in out_dir.glob(f"callgrind.{name}*"):
            old.unlink()
        self.log_file = open(Path(workdir) / f"{name}.log", "ab")
        self.process = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={self.out_base}",
                *argv,
            ],
            env=env,
            cwd=workdir,
            stdout=self.log_file,
            stderr=self.log_file,
        )

    def control(self, *args):
        subprocess.run(
            ["callgrind_control", *args, str(self.process.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def measure(self, label, send):
        """Instructions executed while `send()` runs (all threads)."""
        self.control("--zero")
        self.control("--instr=on")
        send()
        before = set(self.out_dir.glob(f"callgrind.{self.name}*"))
        self.control(f"--dump={label}")
        self.control("--instr=off")
        dumps = sorted(set(self.out_dir.glob(f"callgrind.{self.name}*")) - before)
        if len(dumps) != 1:
            raise RuntimeError(f"{self.name}: expected one new dump, found {dumps}")
        dump = dumps[0]
        final = self.out_dir / f"callgrind.{self.name}.{label}"
        dump.rename(final)
        return self_cost_total(final), final

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        # The exit dump holds only what ran after the last measurement.
        for leftover in self.out_dir.glob(f"callgrind.{self.name}*"):
            if not leftover.name.endswith(SCENARIOS):
                leftover.unlink()


def self_cost_total(dump):
    """The sum of every function's own instructions in a callgrind dump.

    Not the file's `summary:` line: after the first dump of a process whose
    instrumentation was switched off and on, callgrind 3.19 writes a wrong one
    (it underflows). A cost line right after a `calls=` line is the inclusive
    cost of that call, already counted in the callee, so it is skipped.
    """
    total = 0
    after_call = False
    with open(dump) as lines:
        for line in lines:
            if line.startswith("calls="):
                after_call = True
            elif line[:1].isdigit() or line[:1] in ("+", "-", "*"):
                if after_call:
                    after_call = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    total += int(fields[1])
    return total


def wait_port(port, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("did not start listening")


def wait_healthy(base, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            if http("GET", base + "/healthz", timeout=30)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the service did not become healthy")


def seed(base):
    """The 50 approved comments of bench/ab.py, through the API."""
    seed_bench_thread(base, TOKEN, "service", timeout=60)


def drive(server, port, etag, requests, warmup, body, origin=None):
    """Warm-up, then one measurement per scenario; instructions per request."""
    client = Client(port)
    cors = [("Origin", origin)] if origin else []
    conditional = [("If-None-Match", etag)] + cors
    for _ in range(warmup):
        client.get(BENCH_THREAD_PATH, cors)
        client.get(BENCH_THREAD_PATH, conditional)
    results = {}
    for scenario in SCENARIOS:
        headers = conditional if scenario == "304" else cors
        expected = 304 if scenario == "304" else 200

        def send():
            for _ in range(requests):
                status, _, answer = client.get(BENCH_THREAD_PATH, headers)
                if status != expected or (expected == 200 and answer != body):
                    raise RuntimeError(f"{server.name} {scenario}: answered {status}")

        total, dump = server.measure(scenario, send)
        results[scenario] = (total / requests, dump)
        log(f"{server.name} {scenario}: {total:,} instructions / {requests} = {total / requests:,.0f}")
    client.close()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", default=str(SERVICE), help="the service's binary (default target/release)")
    parser.add_argument("--floor", default=str(FLOOR), help="the floor's binary (default target/release/examples)")
    parser.add_argument("--no-floor", action="store_true", help="measure the service only")
    parser.add_argument("--requests", type=int, default=5000, help="requests per scenario (default 5000)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up requests of each kind (default 300)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="the service's environment")
    parser.add_argument("--annotate", type=int, default=0, metavar="N", help="print the top N functions per dump")
    parser.add_argument(
        "--origin",
        metavar="URL",
        help="send this Origin with every request, as the widget on a blog does (a CORS read; "
        "the service allows any origin by default)",
    )
    parser.add_argument("--label", default="", help="suffix of the dump files' names (default none)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed")

    out_dir = OUT / "callgrind"
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="read-cost-"))
    suffix = f"-{args.label}" if args.label else ""
    results = {}
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_") and k not in ("RUST_LOG",)}
        env.update(
            MARGINALIA_BIND=f"127.0.0.1:{port}",
            MARGINALIA_DATABASE_URL=f"sqlite://{tmp}/read-cost.db",
            MARGINALIA_ADMIN_TOKEN=TOKEN,
            MARGINALIA_RATE_LIMIT_PER_MINUTE="100000000",
            MARGINALIA_RATE_LIMIT_BURST="100000000",
        )
        for pair in args.env:
            key, _, value = pair.partition("=")
            env[key] = value
        log(f"starting {args.service} under callgrind")
        service = Callgrinded("service" + suffix, [args.service, "serve"], env, tmp, out_dir)
        try:
            wait_healthy(base, service.process)
            seed(base)
            status, headers, body = http("GET", base + BENCH_THREAD_PATH, timeout=60)
            assert status == 200, f"the thread read answered {status}"
            etag = headers.get("ETag") or headers.get("etag")
            results["service"] = drive(service, port, etag, args.requests, args.warmup, body, args.origin)
        finally:
            service.stop()

        if not args.no_floor:
            body_file = tmp / "thread.json"
            body_file.write_bytes(body)
            port = free_port()
            floor = Callgrinded(
                "floor" + suffix,
                [args.floor, "--bind", f"127.0.0.1:{port}", "--body-file", str(body_file)],
                dict(os.environ),
                tmp,
                out_dir,
            )
            try:
                wait_port(port, floor.process)
                results["floor"] = drive(floor, port, etag, args.requests, args.warmup, body, args.origin)
            finally:
                floor.stop(signal.SIGINT)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"instructions per request ({args.requests} requests over one keep-alive connection, callgrind)")
    print(f"{'scenario':<8} {'service':>12} {'floor':>12} {'service - floor':>16} {'floor / service':>16}")
    for scenario in SCENARIOS:
        mine = results["service"][scenario][0]
        line = f"{scenario:<8} {mine:>12,.0f}"
        if "floor" in results:
            floor_cost = results["floor"][scenario][0]
            line += f" {floor_cost:>12,.0f} {mine - floor_cost:>16,.0f} {floor_cost / mine:>16.3f}"
        print(line)
    if args.annotate:
        for side, scenarios in results.items():
            for scenario, (_, dump) in scenarios.items():
                print(f"\n== {side} {scenario}: {dump}")
                annotated = subprocess.run(
                    ["callgrind_annotate", "--inclusive=no", str(dump)], capture_output=True, text=True, check=True
                ).stdout
                # Per request; the percentages of callgrind_annotate lean on the
                # dump's `summary:`, wrong after the first dump (see above).
                rows = []
                for line in annotated.splitlines():
                    match = re.match(r"^\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
                    if match and "PROGRAM TOTALS" not in line:
                        cost = int(match.group(1).replace(",", "")) / args.requests
                        rows.append(f"{cost:>10,.1f}  {match.group(2)}")
                print("\n".join(rows[: args.annotate]))


if __name__ == "__main__":
    main()
