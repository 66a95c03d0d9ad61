#!/usr/bin/env bash
# HTTP fuzzing: schemathesis generates requests from the service's own OpenAPI
# description (openapi.yaml, served at /openapi.yaml) and checks every answer
# against it: no 5xx, documented status codes, content types, headers and
# response schemas, valid data accepted, invalid data rejected, 405 with
# Allow for undocumented methods, auth not ignored, deleted resources gone.
#
#   tests/schemathesis/run.sh                                   # short: CI, about 2 minutes
#   SCHEMATHESIS_EXAMPLES=1000 SCHEMATHESIS_MAX_TIME=600 tests/schemathesis/run.sh   # long
#
# It builds nothing: it runs MARGINALIA_BIN (default target/release/marginalia,
# from `cargo build --release`) on a free loopback port with a fresh SQLite
# database in a temporary directory, seeds a few comments, fuzzes it, and
# stops it. Any failure exits non-zero. Extra arguments go to `schemathesis run`
# (e.g. `--include-path /api/comments`, `--seed 1`).
#
# Env:
#   MARGINALIA_BIN          the binary (default target/release/marginalia)
#   SCHEMATHESIS_EXAMPLES   test cases per operation and phase (default 25)
#   SCHEMATHESIS_MAX_TIME   seconds of fuzzing: phases repeat until it is spent (default 75)
#   SCHEMATHESIS_VENV       where schemathesis is installed (default target/schemathesis-venv)
#   SCHEMATHESIS_DATABASE_URL  the database (default: a new SQLite file); for PostgreSQL
#                           give an empty database, e.g. one made with createdb
#   SCHEMATHESIS_SCHEMA     a local description to use instead of the served /openapi.yaml
#                           (while editing openapi.yaml without rebuilding the binary)
#   KEEP_TMP=1              keep the database, server log and reports
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${MARGINALIA_BIN:-$root/target/release/marginalia}"
examples="${SCHEMATHESIS_EXAMPLES:-25}"
max_time="${SCHEMATHESIS_MAX_TIME:-75}"
venv="${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}"
token="schemathesis-admin-token-$(date +%s)-$$"

if [ ! -x "$bin" ]; then
    echo "marginalia binary not found at $bin; run 'cargo build --release' first" >&2
    exit 1
fi

# --- schemathesis, pinned, in its own virtualenv ------------------------------
requirements="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/schemathesis" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "==> installing schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
fi
"$venv/bin/schemathesis" --version

# --- the server ---------------------------------------------------------------
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
    status=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$tmp/server.log" ]; then
        echo "--- last lines of the server log ($tmp/server.log)" >&2
        tail -n 40 "$tmp/server.log" >&2 || true
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port"

# Submissions are limited per client; the limits are raised so that 429s do not
# drown everything else (they stay documented, and tests/api covers them).
# 127.0.0.1 is a trusted proxy so that hooks.py can give every request its own
# client address: see there why.
MARGINALIA_BIND="127.0.0.1:$port" \
MARGINALIA_DATABASE_URL="${SCHEMATHESIS_DATABASE_URL:-sqlite://$tmp/fuzz.db}" \
MARGINALIA_ADMIN_TOKEN="$token" \
MARGINALIA_RATE_LIMIT_PER_MINUTE=1000000 \
MARGINALIA_RATE_LIMIT_BURST=1000000 \
MARGINALIA_TRUSTED_PROXIES=127.0.0.1 \
MARGINALIA_LOG="${MARGINALIA_LOG:-warn}" \
    "$bin" serve >"$tmp/server.log" 2>&1 &
server_pid=$!

for _ in $(seq 1 100); do
    if curl -fsS "$base/healthz" >/dev/null 2>&1; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "marginalia exited at start" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null
echo "==> marginalia on $base"

# --- seed: a few comments, one approved with an approved reply ---------------
submit() {
    curl -fsS "$base/api/comments" -H 'Content-Type: application/json' -d "$1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
approve() {
    curl -fsS -X POST "$base/api/admin/comments/$1/approve" -H "Authorization: Bearer $token" >/dev/null
}
first="$(submit '{"uri": "/posts/hello/", "name": "Ada", "email": "ada@example.org", "body": "First *comment*."}')"
approve "$first"
reply="$(submit "{\"uri\": \"/posts/hello/\", \"name\": \"Bob\", \"email\": \"bob@example.org\", \"website\": \"https://bob.example/\", \"body\": \"A reply.\", \"parent_id\": $first}")"
approve "$reply"
submit '{"uri": "/posts/hello/", "name": "Cy", "email": "cy@example.org", "body": "Still pending."}' >/dev/null
submit '{"uri": "/about/", "name": "Di", "email": "di@example.org", "body": "Pending elsewhere."}' >/dev/null
echo "==> seeded comments $first (approved), $reply (approved reply) and two pending"

# --- fuzz ---------------------------------------------------------------------
echo "==> schemathesis: $examples examples per operation, ${max_time}s"
if [ -n "${SCHEMATHESIS_SCHEMA:-}" ]; then
    cp "$SCHEMATHESIS_SCHEMA" "$tmp/openapi.yaml"
else
    # The description the server serves, saved first: given its own URL,
    # schemathesis leaves out the operation that serves it (GET /openapi.yaml).
    curl -fsS "$base/openapi.yaml" -o "$tmp/openapi.yaml"
fi
schema=("$tmp/openapi.yaml" --url "$base")
cd "$tmp"
set +e
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks \
    timeout --kill-after=30 "$((max_time + 240))" \
    "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "${schema[@]}" \
    --checks all \
    --max-examples "$examples" \
    --max-time "$max_time" \
    --header "Authorization: Bearer $token" \
    --workers 1 \
    --report junit --report-dir "$tmp/reports" \
    "$@"
result=$?
set -e

# A 5xx the checks missed (or one from a request they did not look at) is in the log.
if grep -Eq 'request failed|panicked' "$tmp/server.log"; then
    echo "!! the server logged failed requests:" >&2
    grep -E 'request failed|panicked' "$tmp/server.log" | head -n 20 >&2
    [ "$result" -ne 0 ] || result=1
fi
if [ "$result" -ne 0 ]; then
    echo "!! schemathesis found failures (exit $result)" >&2
else
    echo "==> schemathesis: no failures"
fi
exit "$result"
