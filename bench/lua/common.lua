-- Shared by every wrk script of the benchmark (loaded with dofile).
-- done() prints one machine-readable line, "WRKJSON {...}", that
-- bench/bench.py parses: request count, duration, latency percentiles (µs)
-- and every kind of error wrk counts (non-2xx/3xx answers and socket errors).

local common = {}

function common.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end

-- Numbers each wrk thread so that generated comments are distinct across threads.
local next_thread_id = 0
function common.setup(thread)
   thread:set("thread_id", next_thread_id)
   next_thread_id = next_thread_id + 1
end

-- A comment body of about 350 characters, distinct per (thread, counter).
function common.comment_json(uri, thread_id, counter)
   local body = string.format(
      "Comment %d-%d. Thanks for the post: the part about *durable writes* matched what we " ..
      "saw in production. We batch inserts now and the [numbers](https://example.org/n/%d) " ..
      "are much better.\\n\\n- one commit per batch\\n- `fsync` once\\n\\nLooking forward " ..
      "to the next one.", thread_id, counter, counter)
   return string.format(
      '{"uri": "%s", "name": "Bench writer %d", "email": "w%d-%d@bench.example", ' ..
      '"website": "https://bench.example/", "body": "%s"}',
      uri, thread_id, thread_id, counter, body)
end

return common
