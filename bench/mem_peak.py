"""Peak RSS of one marginalia process through a write burst and mixed traffic.

    python3 bench/mem_peak.py BINARY                       # SECS=10 per phase
    MALLOC_ARENA_MAX=2 python3 bench/mem_peak.py BINARY    # any environment is passed on to the server

Seeds 20,000 approved comments over /posts/0/…/posts/999/ (target/release/examples/seed,
as bench/bench.py does), starts the server once (SQLite, rate limit raised) and runs,
in the same process: a c256 burst of distinct submissions, a c32 run of them, then
the mixed run (bench/lua/mixed.lua: 95 % thread reads, 5 % submissions, with a
moderator approving pending comments ~10/s beside it). After each phase it prints
the server's VmRSS and VmHWM (the peak so far). Issue #14's memory figures.
"""
import json, os, re, subprocess, sys, tempfile, threading, time, urllib.request

binary = sys.argv[1]
secs = os.environ.get("SECS", "10")
token = "mem-benchmark-token-0123456789"
port = int(os.environ.get("PORT", "3941"))
base = f"http://127.0.0.1:{port}"
url = f"sqlite://{tempfile.mkdtemp()}/mem.db"
seed = os.environ.get("SEED", "target/release/examples/seed")
subprocess.run([seed, "--database-url", url, "--comments", "20000", "--threads", "1000", "--pending-fraction", "0"],
               check=True, stdout=subprocess.DEVNULL)
env = dict(os.environ, MARGINALIA_BIND=f"127.0.0.1:{port}", MARGINALIA_DATABASE_URL=url, MARGINALIA_ADMIN_TOKEN=token,
           MARGINALIA_RATE_LIMIT_BURST="100000000", MARGINALIA_RATE_LIMIT_PER_MINUTE="100000000")
server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
time.sleep(int(os.environ.get("IDLE", "0")))
print("at the end: RSS %.1f MiB, peak %.1f MiB" % mem())
server.terminate()
server.wait()
