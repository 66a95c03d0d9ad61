"""Interleaved A/B of two marginalia binaries on the thread read (200 and 304).

    python3 bench/ab_read.py OLD_BINARY NEW_BINARY      # ROUNDS=5 SECS=5 by default

Starts both on loopback (ports 3901, 3902), each with its own SQLite file in a
temporary folder, seeds the same 50 approved comments on `/ab/` through the API,
then alternates wrk rounds (`-t2 -c32`) between them, plain and with
`If-None-Match`, swapping the order every round, and prints the medians and the
per-round new/old ratios. Sequential runs on a shared machine drift by tens of
percent; rounds side by side see the same machine. Needs wrk (bench/run.sh
installs it). Used for BENCHMARKS.md's issue #9 comparison; issue #14 folds it
into bench/run.sh.
"""
import json, os, re, subprocess, sys, tempfile, time, urllib.request, statistics
bins = {"old": sys.argv[1], "new": sys.argv[2]}
rounds = int(os.environ.get("ROUNDS", "5")); secs = os.environ.get("SECS", "5")
token = "ab-benchmark-token-0123456789"
procs = {}; ports = {"old": 3901, "new": 3902}
for name, path in bins.items():
    d = tempfile.mkdtemp()
    env = dict(os.environ, MARGINALIA_BIND=f"127.0.0.1:{ports[name]}", MARGINALIA_DATABASE_URL=f"sqlite://{d}/ab.db",
               MARGINALIA_ADMIN_TOKEN=token, MARGINALIA_RATE_LIMIT_BURST="1000", MARGINALIA_RATE_LIMIT_PER_MINUTE="1000",
               MARGINALIA_LOG="info")
    procs[name] = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1.5)
def req(url, data=None, method=None, headers={}):
    r = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(r) as resp:
        return resp.status, resp.headers, resp.read()
etags = {}
for name, port in ports.items():
    base = f"http://127.0.0.1:{port}"
    for i in range(50):
        body = json.dumps({"uri": "/ab/", "name": f"Reader {i}", "email": f"r{i}@example.org", "body": f"Comment number {i} with *some* text and a [link](https://example.org/{i})."}).encode()
        _, _, out = req(base + "/api/comments", body, headers={"Content-Type": "application/json"})
        cid = json.loads(out)["id"]
        req(base + f"/api/admin/comments/{cid}/approve", b"", "POST", {"Authorization": f"Bearer {token}"})
    _, h, _ = req(base + "/api/comments?uri=/ab/")
    etags[name] = h["ETag"]
lua = "/tmp/ab304.lua"
results = {(n, k): [] for n in bins for k in ("read", "304")}
for r in range(rounds):
    for kind in ("read", "304"):
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            url = f"http://127.0.0.1:{ports[name]}/api/comments?uri=/ab/"
            cmd = ["wrk", "-t2", "-c32", f"-d{secs}s", url]
            if kind == "304":
                cmd[1:1] = ["-H", f"If-None-Match: {etags[name]}"]
            out = subprocess.run(cmd, capture_output=True, text=True).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            results[(name, kind)].append(rps)
for p in procs.values(): p.terminate()
for kind in ("read", "304"):
    o, n = results[("old", kind)], results[("new", kind)]
    ratios = [b / a for a, b in zip(o, n)]
    print(f"{kind}: old median {statistics.median(o):,.0f}/s, new median {statistics.median(n):,.0f}/s, "
          f"new/old per round {[round(x, 3) for x in ratios]}, median {statistics.median(ratios):.3f}")
