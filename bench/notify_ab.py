"""Interleaved A/B of submission throughput with notifications off and on.

    python3 bench/notify_ab.py BINARY                  # ROUNDS=5 SECS=5 by default
    WEBHOOK=1 python3 bench/notify_ab.py BINARY        # "on" also POSTs every event to a webhook

Starts two instances of the same release binary on loopback, each with its own
SQLite file (or, with BACKEND=postgres, its own PostgreSQL database on
127.0.0.1:5432): "off" has no mail or webhook configured; "on" sends mail
through a local SMTP sink (started here, in this process) to one moderator, with
the default hourly allowance (so a flood becomes digest entries, as it would
on a real blog), and with WEBHOOK=1 every event also to a local HTTP sink.
wrk then alternates rounds of distinct valid submissions (bench/lua/write.lua,
`-t2 -c32`) between the two, swapping the order every round, and the script
prints each side's median and the per-round on/off ratios. Sequential runs on
a shared machine drift by tens of percent; rounds side by side see the same
machine. Needs wrk (bench/run.sh installs it). Used for BENCHMARKS.md's issue
#10 figures.
"""
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import smtp_sink_session  # noqa: E402  (bench/bench.py, next to this file)

binary = sys.argv[1]
rounds = int(os.environ.get("ROUNDS", "5"))
secs = os.environ.get("SECS", "5")
backend = os.environ.get("BACKEND", "sqlite")
webhook = os.environ.get("WEBHOOK") == "1"
ports = {"off": 3911, "on": 3912}
SMTP_PORT, HOOK_PORT = 3925, 3926
received = {"mails": 0, "hooks": 0}


async def smtp_session(reader, writer):
    """Just enough SMTP for lettre: every message is accepted and counted."""

    def count():
        received["mails"] += 1

    await smtp_sink_session(reader, writer, count)


async def hook_session(reader, writer):
    """A webhook receiver that answers 204 to every request (keep-alive)."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
        await reader.readexactly(length)
        received["hooks"] += 1
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()


def sinks():
    async def main():
        await asyncio.start_server(smtp_session, "127.0.0.1", SMTP_PORT)
        await asyncio.start_server(lambda r, w: hook_session(r, w), "127.0.0.1", HOOK_PORT)
        await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except Exception:
        pass


threading.Thread(target=sinks, daemon=True).start()

procs, dbs = {}, []
for name, port in ports.items():
    if backend == "postgres":
        db = f"notify_ab_{name}_{os.getpid()}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
        dbs.append(db)
        url = f"postgres://postgres@127.0.0.1:5432/{db}"
    else:
        url = f"sqlite://{tempfile.mkdtemp()}/ab.db"
    env = dict(
        os.environ,
        MARGINALIA_BIND=f"127.0.0.1:{port}",
        MARGINALIA_DATABASE_URL=url,
        MARGINALIA_ADMIN_TOKEN="ab-benchmark-token-0123456789",
        MARGINALIA_RATE_LIMIT_BURST="1000000",
        MARGINALIA_RATE_LIMIT_PER_MINUTE="1000000",
        MARGINALIA_LOG="info",
    )
    if name == "on":
        env.update(
            MARGINALIA_SMTP_URL=f"smtp://127.0.0.1:{SMTP_PORT}?tls=none",
            MARGINALIA_MAIL_FROM="Bench blog <comments@bench.example>",
            MARGINALIA_NOTIFY_EMAILS="moderator@bench.example",
        )
        if webhook:
            env.update(
                MARGINALIA_WEBHOOK_URLS=f"http://127.0.0.1:{HOOK_PORT}/hook",
                MARGINALIA_WEBHOOK_SECRET="bench-webhook-secret",
            )
    procs[name] = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for port in ports.values():
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz").read()
            break
        except Exception:
            time.sleep(0.1)

results = {name: [] for name in ports}
env = dict(os.environ, BENCH_THREADS="1000", BENCH_LUA_DIR="bench/lua")
for r in range(rounds):
    for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
        url = f"http://127.0.0.1:{ports[name]}"
        out = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{secs}s", "-s", "bench/lua/write.lua", url],
            capture_output=True, text=True, env=env,
        ).stdout
        results[name].append(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports['on']}/metrics").read().decode()
for p in procs.values():
    p.terminate()
    p.wait()
for db in dbs:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE {db} WITH (FORCE)"])

off, on = results["off"], results["on"]
ratios = [b / a for a, b in zip(off, on)]
print(f"backend {backend}, webhook {'on' if webhook else 'off'}, {rounds} rounds of {secs} s, wrk -t2 -c32")
print(f"notifications off: median {statistics.median(off):,.0f}/s {[round(x) for x in off]}")
print(f"notifications on:  median {statistics.median(on):,.0f}/s {[round(x) for x in on]}")
print(f"on/off per round {[round(x, 3) for x in ratios]}, median {statistics.median(ratios):.3f}")
print(f"the sinks received {received['mails']} mails and {received['hooks']} webhook calls")
queued = [line for line in metrics.splitlines() if line.startswith("marginalia_notifications_queued")]
print("still queued at the end:", ", ".join(queued) or "nothing")
