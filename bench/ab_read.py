"""Interleaved A/B of two marginalia binaries on the thread read (200 and 304).

    python3 bench/ab_read.py OLD_BINARY NEW_BINARY      # ROUNDS=5 SECS=5 by default

Kept for BENCHMARKS.md's issue #9 comparison, which it produced; issue #14
folded it into bench/ab.py (`bench/run.sh --ab --pair binaries`), which this
now runs: same rounds, same scenarios, plus the p99 ratio and CSV output.
"""
import os
import subprocess
import sys
from pathlib import Path

if len(sys.argv) != 3:
    sys.exit(__doc__)
ab = Path(__file__).resolve().parent / "ab.py"
command = [
    sys.executable, str(ab), "--pair", "binaries", "--a-bin", sys.argv[1], "--b-bin", sys.argv[2],
    "--backends", "sqlite", "--rounds", os.environ.get("ROUNDS", "5"), "--secs", os.environ.get("SECS", "5"),
]
sys.exit(subprocess.call(command))
