#!/usr/bin/env bash
# Import speed: generates a WordPress export (WXR 1.2) of 1,000,000 comments
# (BENCH_IMPORT_COMMENTS to change it) and imports it with the release binary
# into a fresh SQLite file and a fresh PostgreSQL database, reporting
# comments per second and peak memory (/usr/bin/time -v). CPU heavy: run it
# alone. PostgreSQL on 127.0.0.1:5432 (role postgres), as .ci/run sets it up.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMENTS=${BENCH_IMPORT_COMMENTS:-1000000}
PG_SERVER=${BENCH_PG_SERVER:-postgres://postgres@127.0.0.1:5432/postgres}
OUT=${BENCH_IMPORT_DIR:-$(mktemp -d)}
mkdir -p "$OUT"
WXR="$OUT/wordpress-$COMMENTS.xml"

cargo build --release --locked --bin marginalia
BIN="$PWD/target/release/marginalia"
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

if [ ! -s "$WXR" ]; then
    echo "generating $WXR ($COMMENTS comments)"
    python3 bench/wxr.py "$WXR" "$COMMENTS"
fi
SIZE=$(stat -c %s "$WXR")
echo "file: $WXR, $((SIZE / 1024 / 1024)) MiB, $COMMENTS comments"

run() {
    local name=$1 url=$2
    local log="$OUT/$name.time"
    echo "== $name (load before: $(cut -d' ' -f1-3 /proc/loadavg))"
    MARGINALIA_DATABASE_URL="$url" "$BIN" migrate
    local start end
    start=$(date +%s.%N)
    MARGINALIA_DATABASE_URL="$url" /usr/bin/time -v "$BIN" import wxr "$WXR" >"$OUT/$name.summary" 2>"$log"
    end=$(date +%s.%N)
    head -n 3 "$OUT/$name.summary"
    local seconds rss
    seconds=$(python3 -c "print(f'{$end - $start:.1f}')")
    rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$log")
    python3 -c "print(f'$name: {$COMMENTS / ($end - $start):,.0f} comments/s, {$end - $start:.1f} s, peak RSS {$rss / 1024:.0f} MiB')"
    echo "(load after: $(cut -d' ' -f1-3 /proc/loadavg))"
}

rm -f "$OUT/bench.db" "$OUT/bench.db-wal" "$OUT/bench.db-shm"
run sqlite "sqlite://$OUT/bench.db"

DB=marginalia_import_bench
psql "$PG_SERVER" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
run postgres "${PG_SERVER%/*}/$DB"
psql "$PG_SERVER" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
echo "files in $OUT"
