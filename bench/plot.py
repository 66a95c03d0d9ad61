#!/usr/bin/env python3
"""Plots throughput and p99 latency against database size, for both backends.

    python3 bench/plot.py bench/out/scale.csv docs/bench/scale.png
    python3 bench/plot.py --ab bench/out/ab-floor.csv docs/bench/ab-floor.png

With --ab it plots instead the interleaved ratios that bench/ab.py writes
(one bar per backend and scenario: the median B/A ratio, the whiskers its
range over the rounds, a line at 0.90 for the read target).

Reads the scale.csv that bench/bench.py writes (backend, kind, db_comments,
rps, p50_ms, p99_ms, peak_rss_mib); kind is "read" (the 50-comment thread,
thread cache off) or "queue" (the first page of the moderation queue).
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("matplotlib is missing: pip install matplotlib")


def plot_ab(source, target):
    with open(source) as rows:
        rows = list(csv.DictReader(rows))
    if not rows:
        sys.exit(f"no rows in {source}")
    labels = [f"{r['backend']}\n{r['scenario']}" for r in rows]
    medians = [float(r["ratio_median"]) for r in rows]
    low = [m - float(r["ratio_min"]) for m, r in zip(medians, rows)]
    high = [float(r["ratio_max"]) - m for m, r in zip(medians, rows)]
    colors = {"read": "tab:red", "304": "tab:orange", "write": "tab:blue"}
    figure, axis = plt.subplots(figsize=(max(5, 1.3 * len(rows)), 4))
    axis.bar(range(len(rows)), medians, yerr=[low, high], capsize=4,
             color=[colors.get(r["scenario"], "tab:gray") for r in rows])
    for index, median in enumerate(medians):
        axis.annotate(f"{median:.2f}", (index, median), textcoords="offset points", xytext=(8, 4), fontsize=8)
    if rows[0]["pair"] == "floor":
        axis.axhline(0.9, color="black", linestyle=":", linewidth=1, label="read target 0.90")
        axis.legend(fontsize=8)
    axis.set_xticks(range(len(rows)), labels, fontsize=8)
    axis.set_ylabel(f"{rows[0]['b']} ÷ {rows[0]['a']} (req/s)")
    axis.set_ylim(bottom=0)
    axis.grid(True, axis="y", alpha=0.3)
    axis.set_title(
        f"interleaved A/B: {rows[0]['rounds']} rounds of {rows[0]['secs']} s, median and range "
        f"(load {min(float(r['load_min']) for r in rows):.1f}–{max(float(r['load_max']) for r in rows):.1f})",
        fontsize=9,
    )
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--ab":
        plot_ab(Path(sys.argv[2] if len(sys.argv) > 2 else "bench/out/ab-floor.csv"),
                Path(sys.argv[3] if len(sys.argv) > 3 else "docs/bench/ab-floor.png"))
        return
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/scale.csv")
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/bench/scale.png")
    series = defaultdict(list)
    with open(source) as rows:
        for row in csv.DictReader(rows):
            series[(row["backend"], row["kind"])].append(
                (int(row["db_comments"]), float(row["rps"]), float(row["p99_ms"]))
            )
    if not series:
        sys.exit(f"no rows in {source}")

    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"sqlite": "-", "postgres": "--"}
    markers = {"sqlite": "o", "postgres": "s"}
    colors = {"read": "tab:red", "queue": "tab:blue"}
    labels = {"read": "thread read (cache off)", "queue": "moderation queue page"}
    for (backend, kind), points in sorted(series.items()):
        points.sort()
        sizes = [p[0] for p in points]
        label = f"{backend}: {labels.get(kind, kind)}"
        style = {
            "linestyle": styles.get(backend, ":"),
            "marker": markers.get(backend, "x"),
            "color": colors.get(kind, "tab:gray"),
            "label": label,
        }
        throughput.plot(sizes, [p[1] for p in points], **style)
        latency.plot(sizes, [p[2] for p in points], **style)
    for axis, title, unit in [(throughput, "Throughput", "requests/s"), (latency, "p99 latency", "ms")]:
        axis.set_xscale("log")
        axis.set_xlabel("comments in the database (10,000 threads)")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.set_ylim(bottom=0)
        axis.grid(True, which="both", alpha=0.3)
    throughput.legend(fontsize=8)
    figure.suptitle("marginalia: scale (wrk on the same 2-core machine)")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
