#!/usr/bin/env bash
# Runs the browser suite: the widget, the moderation page and the demo page in headless Chromium
# against the release binary. Called by .ci/run after `cargo build --release --locked`; it can
# also be run by hand from anywhere.
#
#   tests/browser/run.sh                     # all tests
#   tests/browser/run.sh --test-name-pattern=reply   # extra arguments go to `node --test`
#
# Env: MARGINALIA_BIN (default target/release/marginalia), CHROMIUM_PATH (default /usr/bin/chromium),
# BROWSER_TEST_TIMEOUT (seconds for the whole suite, default 900), KEEP_TMP=1 keeps databases and logs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

export MARGINALIA_BIN="${MARGINALIA_BIN:-$root/target/release/marginalia}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
suite_timeout="${BROWSER_TEST_TIMEOUT:-900}"

if [ ! -x "$MARGINALIA_BIN" ]; then
    echo "marginalia binary not found at $MARGINALIA_BIN; run 'cargo build --release' first" >&2
    exit 1
fi

if ! command -v node >/dev/null 2>&1; then
    echo "node (20 or newer) is required for the browser tests" >&2
    exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "node 20 or newer is required (found $(node --version))" >&2
    exit 1
fi

if [ ! -x "$CHROMIUM_PATH" ]; then
    echo "==> installing chromium (not found at $CHROMIUM_PATH)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium
fi
"$CHROMIUM_PATH" --version

# Screenshots of the Japanese and Chinese widget need a CJK font (Arabic and Hebrew are in DejaVu).
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=ja)" ]; then
    echo "==> installing fonts-noto-cjk (no Japanese font found)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends fonts-noto-cjk
fi

echo "==> npm ci"
npm ci --no-audit --no-fund

echo "==> node --test (timeout ${suite_timeout}s)"
# Each test has its own time limit (90 s); this one catches a hung browser or server.
timeout --kill-after=30 "$suite_timeout" \
    node --test --test-concurrency=1 "$@" marginalia.test.js notifications.test.js xss-corpus.test.js i18n.test.js threads.test.js
