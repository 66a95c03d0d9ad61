#!/usr/bin/env bash
# The soak run: mixed traffic for SOAK_SECONDS (default 600) against a release
# build, watching the server's memory and open descriptors.
#
#   bench/soak.sh                     # 10 minutes, SQLite
#   SOAK_SECONDS=60 bench/soak.sh     # the CI version
#   SOAK_DATABASE_URL=postgres://postgres@127.0.0.1:5432/soak bench/soak.sh
#
# Builds target/release/marginalia, installs wrk (Debian package) when
# missing, then hands over to bench/soak.py (see there for every variable and
# for what fails the run: any 5xx, socket errors, RSS or descriptors growing
# after warm-up, an unclean SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    "") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
esac

echo "==> cargo build --release --locked --bin marginalia"
cargo build --release --locked --bin marginalia

if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

exec python3 bench/soak.py
