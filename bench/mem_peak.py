"""Peak RSS of one marginalia process through the whole memory benchmark of issue #14.

    python3 bench/mem_peak.py BINARY                       # SECS=10 per wrk phase
    MALLOC_ARENA_MAX=2 python3 bench/mem_peak.py BINARY    # any environment is passed on to the server
    MAIL_BACKLOG=0 IMPORT_COMMENTS=0 python3 bench/mem_peak.py BINARY   # the first three phases only

Seeds 20,000 approved comments over /posts/0/…/posts/999/ (target/release/examples/seed,
as bench/bench.py does), starts the server once (SQLite, rate limit raised) and runs,
in the same process: a c256 burst of distinct submissions, a c32 run of them, then
the mixed run (bench/lua/mixed.lua: 95 % thread reads, 5 % submissions, with a
moderator approving pending comments ~10/s beside it); then

- the outbox draining a backlog of MAIL_BACKLOG (10,000) mails: the server runs
  with mail on from the start (one moderator, MARGINALIA_NOTIFY_PER_HOUR =
  MAIL_BACKLOG, so the first MAIL_BACKLOG submissions of the bursts each queue a
  moderator mail and the rest wait for the hourly digest), and the local SMTP
  sink holds every connection before its greeting: the mail server is "down"
  while the bursts queue mail. The sink then answers, and the phase ends when
  /metrics shows no mail queued (the one send that timed out meanwhile is
  retried 10 s later, notify::RETRY_SCHEDULE);
- an import of IMPORT_COMMENTS (100,000) comments (bench/wxr.py: 1,000 posts of
  100) with `marginalia import wxr` into the database the server uses, while it
  runs, as an operator importing at a quiet time would (docs/data.md); its own
  peak RSS is reported apart (/usr/bin/time -v). The server is not restarted
  (that would reset the peak measured here); none of the imported threads was
  read before, so it has no stale copy of any. Then every imported thread is
  read through the server, twice (from the database, then from its cache).

After each phase it prints the server's VmRSS and VmHWM (the peak so far).
"""
import asyncio, json, os, re, subprocess, sys, tempfile, threading, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import smtp_sink_session  # noqa: E402  (bench/bench.py, next to this file)

binary = sys.argv[1]
secs = os.environ.get("SECS", "10")
token = "mem-benchmark-token-0123456789"
port = int(os.environ.get("PORT", "3941"))
base = f"http://127.0.0.1:{port}"
tmp = tempfile.mkdtemp()
url = f"sqlite://{tmp}/mem.db"
mail_backlog = int(os.environ.get("MAIL_BACKLOG", "10000"))
import_comments = int(os.environ.get("IMPORT_COMMENTS", "100000"))
seed = os.environ.get("SEED", "target/release/examples/seed")
subprocess.run([seed, "--database-url", url, "--comments", "20000", "--threads", "1000", "--pending-fraction", "0"],
               check=True, stdout=subprocess.DEVNULL)


class HeldSink:
    """An SMTP server that accepts every message, but holds each connection
    before its greeting until `release()`: a mail server that is down without
    refusing connections."""

    def __init__(self):
        self.mails = 0
        self.port = None
        self.released = threading.Event()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def release(self):
        self.released.set()

    async def _smtp(self, reader, writer):
        # Held before the greeting: a mail server that is down without
        # refusing connections, until release().
        while not self.released.is_set():
            await asyncio.sleep(0.05)

        def count():
            self.mails += 1

        await smtp_sink_session(reader, writer, count)

    def _run(self, ready):
        async def main():
            server = await asyncio.start_server(self._smtp, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())


env = dict(os.environ, MARGINALIA_BIND=f"127.0.0.1:{port}", MARGINALIA_DATABASE_URL=url, MARGINALIA_ADMIN_TOKEN=token,
           MARGINALIA_RATE_LIMIT_BURST="100000000", MARGINALIA_RATE_LIMIT_PER_MINUTE="100000000")
sink = None
if mail_backlog:
    sink = HeldSink()
    env.update(MARGINALIA_SMTP_URL=f"smtp://127.0.0.1:{sink.port}?tls=none",
               MARGINALIA_MAIL_FROM="Bench <comments@bench.example>",
               MARGINALIA_NOTIFY_EMAILS="moderator@bench.example",
               MARGINALIA_NOTIFY_PER_HOUR=str(mail_backlog))
# SERVER_LOG=FILE keeps the server's log (standard error) there.
log = open(os.environ["SERVER_LOG"], "w") if os.environ.get("SERVER_LOG") else subprocess.DEVNULL
server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=log)
for _ in range(200):
    try:
        urllib.request.urlopen(base + "/readyz").read()
        break
    except Exception:
        time.sleep(0.05)
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode}")


def mem():
    status = open(f"/proc/{server.pid}/status").read()
    return tuple(int(re.search(rf"{k}:\s+(\d+)", status).group(1)) / 1024 for k in ("VmRSS", "VmHWM"))


def wrk(conns, script, counter_base):
    env = dict(os.environ, BENCH_THREADS="1000", BENCH_LUA_DIR="bench/lua", BENCH_COUNTER_START=str(counter_base))
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "-s", script, base + "/"],
                         capture_output=True, text=True, env=env).stdout
    stats = json.loads(re.search(r"WRKJSON (\{.*\})", out).group(1))
    return stats["requests"], stats["status"]


def approve(halt):
    auth = {"Authorization": f"Bearer {token}"}
    while not halt.is_set():
        try:
            r = urllib.request.Request(base + "/api/admin/comments?status=pending&limit=20", headers=auth)
            ids = [c["id"] for c in json.loads(urllib.request.urlopen(r).read())["comments"]]
            for i in ids:
                r = urllib.request.Request(f"{base}/api/admin/comments/{i}/approve", b"", auth, method="POST")
                urllib.request.urlopen(r).read()
                halt.wait(0.1)
            if not ids:
                halt.wait(0.1)
        except OSError:
            halt.wait(0.1)


def queued_mails():
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    found = re.search(r'notifications_queued\{kind="moderator_mail"\} (\d+)', text)
    return int(found.group(1)) if found else 0


def post_comments(count, counter_base):
    """Distinct comments from here, when the bursts queued fewer mails than asked."""
    def post(n):
        body = json.dumps({"uri": f"/posts/{n % 1000}/", "name": f"Top-up {n}", "email": f"t{n}@bench.example",
                           "body": f"Top-up comment {n}: enough words to pass every check."}).encode()
        r = urllib.request.Request(base + "/api/comments", body, {"Content-Type": "application/json"})
        urllib.request.urlopen(r).read()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(counter_base, counter_base + count)))


def wait_until(condition, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return True
        time.sleep(0.5)
    return False


def read_threads(uris):
    def read(uri):
        urllib.request.urlopen(f"{base}/api/comments?uri={uri}").read()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(read, uris))


print(f"{binary}, MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(unset)')}, "
      f"load average {os.getloadavg()[0]:.1f}")
print("after start-up: RSS %.1f MiB, peak %.1f MiB" % mem())
for name, conns, script, counter_base in [("write c256", 256, "bench/lua/write.lua", 10_000_000),
                                          ("write c32", 32, "bench/lua/write.lua", 20_000_000),
                                          ("mixed c32", 32, "bench/lua/mixed.lua", 0)]:
    halt = threading.Event()
    if name.startswith("mixed"):
        threading.Thread(target=approve, args=(halt,), daemon=True).start()
    requests, errors = wrk(conns, script, counter_base)
    halt.set()
    time.sleep(1)
    print(f"after {name} ({requests} requests, {errors} non-2xx): RSS %.1f MiB, peak %.1f MiB" % mem())

if mail_backlog:
    # The dispatcher has composed the mails once the count stops growing.
    last = -1
    while (queued := queued_mails()) != last:
        last = queued
        time.sleep(3)
    if queued < mail_backlog:
        post_comments(mail_backlog - queued, 30_000_000)
        wait_until(lambda: queued_mails() >= mail_backlog, 60)
    queued = queued_mails()
    print(f"with {queued} mails queued, the mail server down: RSS %.1f MiB, peak %.1f MiB" % mem())
    started = time.time()
    sink.release()
    # Counted at the sink: /metrics counts the outbox with a scan of every
    # row, payloads included, which polled often would slow the drain and
    # fill SQLite's page cache itself.
    wait_until(lambda: sink.mails >= queued, 900)
    if left := queued_mails():
        print(f"  the outbox did not drain within 900 s ({left} left)")
    took = time.time() - started
    print(f"after the outbox drained ({sink.mails} mails in {took:.0f} s, {sink.mails / took:.0f}/s): "
          "RSS %.1f MiB, peak %.1f MiB" % mem())

if import_comments:
    wxr = f"{tmp}/import.xml"
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "wxr.py"), wxr, str(import_comments)],
                   check=True)
    started = time.time()
    done = subprocess.run(["/usr/bin/time", "-v", binary, "import", "wxr", wxr], env=env,
                          capture_output=True, text=True)
    took = time.time() - started
    if done.returncode:
        sys.exit(f"the import failed:\n{done.stdout}{done.stderr}")
    importer = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 1024
    print(f"import of {import_comments:,} comments (its own process): {took:.1f} s, "
          f"{import_comments / took:,.0f} comments/s, peak RSS {importer:.1f} MiB")
    print("after the import, server: RSS %.1f MiB, peak %.1f MiB" % mem())
    uris = [f"/{post}/post-{post}/" for post in range(1, import_comments // 100 + 1)]
    read_threads(uris)
    read_threads(uris)
    print(f"after reading the {len(uris):,} imported threads twice: RSS %.1f MiB, peak %.1f MiB" % mem())

time.sleep(int(os.environ.get("IDLE", "0")))
print("at the end: RSS %.1f MiB, peak %.1f MiB" % mem())
server.terminate()
server.wait()
