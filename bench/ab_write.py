"""Interleaved A/B of two marginalia binaries on accepted submissions.

    python3 bench/ab_write.py OLD_BINARY NEW_BINARY    # ROUNDS=7 SECS=5 CONNS=32 by default
    BACKEND=postgres python3 bench/ab_write.py OLD NEW # each its own database on 127.0.0.1:5432
    RULES=default ...                                  # spam rules at their defaults instead of "full"
    NEW_ENV="MALLOC_ARENA_MAX=2" python3 bench/ab_write.py BIN BIN   # same binary, "new" with extra environment

Starts both binaries on loopback (ports 3931, 3932), each with its own SQLite
file (or PostgreSQL database), the rate limit raised. With RULES=full (the
default) a moderator first stores rules that make every submission go through
every rule: `moderation: known` (a look-up of the author), `hold_links: 2`,
50 held and 50 blocked words that never match. wrk (`-t2 -cCONNS`,
bench/lua/write.lua) then alternates rounds between the two, swapping
the order every round; every comment of every round is distinct (the counter
starts at a new base each run), so every answer is an accepted `202`, and the
script counts only those. For each round it reads the server's CPU time
(/proc/PID/stat utime+stime) before and after, so it prints CPU µs per
accepted comment beside the rates, and the peak RSS (VmHWM) of each server at
the end. Sequential runs on a shared machine drift by tens of percent; rounds
side by side see the same machine. Issue #14's submission-path figures.
"""
import json, os, re, statistics, subprocess, sys, tempfile, time, urllib.request

bins = {"old": sys.argv[1], "new": sys.argv[2]}
rounds = int(os.environ.get("ROUNDS", "7"))
secs = os.environ.get("SECS", "5")
conns = os.environ.get("CONNS", "32")
backend = os.environ.get("BACKEND", "sqlite")
rules = os.environ.get("RULES", "full")
token = "ab-benchmark-token-0123456789"
ports = {"old": 3931, "new": 3932}
tick = os.sysconf("SC_CLK_TCK")
procs, dbs = {}, []
for name, path in bins.items():
    if backend == "postgres":
        db = f"ab_write_{name}_{os.getpid()}"
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {db}"], check=True)
        dbs.append(db)
        url = f"postgres://postgres@127.0.0.1:5432/{db}?sslmode=disable"
    else:
        url = f"sqlite://{tempfile.mkdtemp()}/ab.db"
    env = dict(os.environ, MARGINALIA_BIND=f"127.0.0.1:{ports[name]}", MARGINALIA_DATABASE_URL=url,
               MARGINALIA_ADMIN_TOKEN=token, MARGINALIA_RATE_LIMIT_BURST="100000000",
               MARGINALIA_RATE_LIMIT_PER_MINUTE="100000000", MARGINALIA_LOG=os.environ.get("MARGINALIA_LOG", "info"))
    extra = os.environ.get(f"{name.upper()}_ENV", "")
    env.update(item.split("=", 1) for item in extra.split())
    procs[name] = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def req(url, data=None, method=None, headers={}):
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(r) as resp:
        return resp.status, resp.read()


for name, port in ports.items():
    for _ in range(200):
        try:
            req(f"http://127.0.0.1:{port}/readyz")
            break
        except Exception:
            time.sleep(0.05)
    if rules == "full":
        words = {"moderation": "known", "hold_links": 2,
                 "held_words": [f"heldword{i}" for i in range(50)],
                 "blocked_words": [f"blockedword{i}" for i in range(50)]}
        req(f"http://127.0.0.1:{port}/api/admin/rules", json.dumps(words).encode(), "PUT",
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def hwm(pid):
    return int(re.search(r"VmHWM:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1)) / 1024


rates = {n: [] for n in bins}
cpu = {n: [] for n in bins}
loads = []
base = 0
for r in range(rounds):
    loads.append(os.getloadavg()[0])
    for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
        base += 10_000_000
        env = dict(os.environ, BENCH_THREADS="1000", BENCH_LUA_DIR="bench/lua", BENCH_COUNTER_START=str(base))
        before = cpu_seconds(procs[name].pid)
        out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{secs}s", "-s", "bench/lua/write.lua",
                              f"http://127.0.0.1:{ports[name]}"], capture_output=True, text=True, env=env).stdout
        used = cpu_seconds(procs[name].pid) - before
        stats = json.loads(re.search(r"WRKJSON (\{.*\})", out).group(1))
        accepted = stats["requests"] - stats["status"] - stats["read"] - stats["write"] - stats["timeout"]
        rates[name].append(accepted / (stats["duration_us"] / 1e6))
        cpu[name].append(used * 1e6 / max(accepted, 1))
        if stats["status"]:
            print(f"round {r} {name}: {stats['status']} non-2xx answers", file=sys.stderr)
peaks = {n: hwm(p.pid) for n, p in procs.items()}
for p in procs.values():
    p.terminate()
    p.wait()
for db in dbs:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE {db} WITH (FORCE)"])
o, n = rates["old"], rates["new"]
ratios = [b / a for a, b in zip(o, n)]
print(f"backend {backend}, rules {rules}, {rounds} rounds of {secs} s, wrk -t2 -c{conns}, "
      f"load average {min(loads):.1f}-{max(loads):.1f}")
for name in bins:
    print(f"{name}: accepted median {statistics.median(rates[name]):,.0f}/s {[round(x) for x in rates[name]]}; "
          f"CPU median {statistics.median(cpu[name]):.1f} µs/comment {[round(x, 1) for x in cpu[name]]}; "
          f"peak RSS {peaks[name]:.1f} MiB")
print(f"new/old per round {[round(x, 3) for x in ratios]}, median {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.3f}-{max(ratios):.3f})")
