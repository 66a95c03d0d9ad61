#!/usr/bin/env bash
# The marginalia benchmark, in one command from a fresh clone:
#
#   bench/run.sh            # SQLite and PostgreSQL, 10 s per scenario, scale 1k and 100k
#   BENCH_SCALE=full bench/run.sh      # adds the 1,000,000-comment scale step
#   bench/run.sh --smoke    # ~2 s per scenario, SQLite only (CI)
#   bench/run.sh --ab [bench/ab.py options]   # interleaved A/B rounds: the service
#                           # against the floor (default), or two builds or settings
#                           # side by side (--pair binaries|rules|notify|filter|env);
#                           # --ab --smoke: 2 rounds of 1 s. See bench/ab.py --help.
#
# Builds the release binary and the benchmark tools, installs wrk (Debian
# package) and matplotlib when missing, then hands over to bench/bench.py,
# which prints the table and writes bench/out/ (CSV, wrk logs, query plans)
# and docs/bench/scale.png (bench/out/scale.png with --smoke). PostgreSQL is
# expected on 127.0.0.1:5432 as `postgres` (override with BENCH_PG_URL);
# BENCH_DURATION, BENCH_BACKENDS, BENCH_WRK: see bench/bench.py. BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=false
if [[ "${1:-}" == "--ab" ]]; then
    # Everything after --ab is bench/ab.py's.
    shift
    echo "==> cargo build --release --locked --bin marginalia --example floor"
    cargo build --release --locked --bin marginalia --example floor
    if ! command -v wrk >/dev/null 2>&1; then
        echo "==> installing wrk"
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    fi
    exec python3 bench/ab.py "$@"
fi
for arg in "$@"; do
    case "$arg" in
        --smoke) smoke=true ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

echo "==> cargo build --release --locked --bin marginalia --example floor --example seed --example limiter_sweep"
cargo build --release --locked --bin marginalia --example floor --example seed --example limiter_sweep

if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
if ! command -v psql >/dev/null 2>&1 && [[ "${BENCH_BACKENDS:-sqlite,postgres}" == *postgres* ]] && ! $smoke; then
    echo "==> installing the PostgreSQL client"
    apt-get install -y postgresql-client >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y postgresql-client >/dev/null; }
fi
if ! python3 -c 'import matplotlib' >/dev/null 2>&1; then
    echo "==> installing matplotlib"
    python3 -m pip install --quiet matplotlib || echo "matplotlib could not be installed: no plot" >&2
fi

if $smoke; then
    exec python3 bench/bench.py --smoke
fi
exec python3 bench/bench.py
