-- The soak run (bench/soak.py): reads of random threads among SOAK_THREADS,
-- a few blog-index count reads, SOAK_WRITE_SHARE of distinct submissions.
-- Every answer's status is tallied; done() prints "SOAKJSON {...}" with the
-- totals, the 5xx count and wrk's socket errors. Moderation runs beside it.
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local thread_count = tonumber(os.getenv("SOAK_THREADS") or "1000")
local write_share = tonumber(os.getenv("SOAK_WRITE_SHARE") or "0.02")
local headers = { ["Content-Type"] = "application/json" }
local counter = 0
-- Global, so that done() can read each thread's tally with thread:get.
statuses = {}
local all_threads = {}

function setup(thread)
   common.setup(thread)
   table.insert(all_threads, thread)
end

function init(args)
   math.randomseed(4242 + thread_id)
   statuses = { s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0 }
end

function request()
   local uri = string.format("/soak/%d/", math.random(0, thread_count - 1))
   local roll = math.random()
   if roll < write_share then
      counter = counter + 1
      return wrk.format("POST", "/api/comments", headers, common.comment_json(uri, thread_id, counter))
   elseif roll < write_share + 0.03 then
      local other = string.format("/soak/%d/", math.random(0, thread_count - 1))
      return wrk.format("GET", "/api/counts?uri=" .. uri .. "&uri=" .. other)
   end
   return wrk.format("GET", "/api/comments?uri=" .. uri)
end

function response(status, headers, body)
   local class = "s" .. math.floor(status / 100) .. "xx"
   statuses[class] = (statuses[class] or 0) + 1
end

function done(summary, latency, requests)
   local totals = { s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0 }
   for _, thread in ipairs(all_threads) do
      local counts = thread:get("statuses")
      for class, count in pairs(counts) do
         totals[class] = (totals[class] or 0) + count
      end
   end
   local e = summary.errors
   io.write(string.format(
      'SOAKJSON {"requests": %d, "duration_us": %d, "s2xx": %d, "s3xx": %d, "s4xx": %d, "s5xx": %d, ' ..
      '"p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
      summary.requests, summary.duration, totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout))
end
