"""Schemathesis hooks for tests/schemathesis/run.sh: two things a schema
cannot say, applied to every request just before it is sent.

1. Every request gets its own client address. The server under test trusts
   127.0.0.1 as a proxy (MARGINALIA_TRUSTED_PROXIES), so this X-Forwarded-For
   is the client its limits see. Without it, the fuzzer's random tokens and
   session cookies would lock 127.0.0.1 out of the moderator API after ten
   guesses (every admin call a 429 for a minute), and most of the run would
   test the lock-out instead of the API (tests/api/auth.rs tests it). No
   traffic goes to these addresses: they are only a header value, from the
   benchmarking range 198.18.0.0/15.

2. A reply needs an *approved* parent on the same page. A drawn `parent_id`
   names no such comment, which is a 422 on `parent_id` (as documented), so
   a submission's well-formed `parent_id` is dropped and the rest of the case
   is sent as generated. A malformed one (a string, a float, a boolean) stays
   and must still be refused. Replies are covered by tests/api (submit.rs).
"""

import ipaddress
import itertools
import threading

import schemathesis

_BASE = int(ipaddress.IPv4Address("198.18.0.0"))
_SIZE = 1 << 17  # the whole /15
_counter = itertools.count()
_lock = threading.Lock()


def _is_id(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("+-").isdigit()


@schemathesis.hook
def before_call(context, case, kwargs):
    with _lock:
        n = next(_counter)
    headers = dict(case.headers or {})
    headers["X-Forwarded-For"] = str(ipaddress.IPv4Address(_BASE + n % _SIZE))
    case.headers = headers

    if case.method.upper() == "POST" and case.path == "/api/comments":
        if isinstance(case.body, dict) and _is_id(case.body.get("parent_id")):
            body = dict(case.body)
            del body["parent_id"]
            case.body = body
