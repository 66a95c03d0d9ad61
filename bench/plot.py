#!/usr/bin/env python3
"""Plots throughput and p99 latency against database size, for both backends.

    python3 bench/plot.py bench/out/scale.csv docs/bench/scale.png

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


def main():
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
