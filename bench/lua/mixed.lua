-- The mixed run: 95 % GET of a random thread among BENCH_THREADS
-- (/posts/0/ … /posts/N-1/), 5 % POST of a distinct comment to a random thread.
-- Moderator approvals run beside it (bench/bench.py).
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local threads = tonumber(os.getenv("BENCH_THREADS") or "1000")
local write_share = tonumber(os.getenv("BENCH_WRITE_SHARE") or "0.05")
local headers = { ["Content-Type"] = "application/json" }
local counter = 0

setup = common.setup

function init(args)
   math.randomseed(1000 + thread_id)
end

function request()
   local uri = string.format("/posts/%d/", math.random(0, threads - 1))
   if math.random() < write_share then
      counter = counter + 1
      return wrk.format("POST", "/api/comments", headers, common.comment_json(uri, thread_id, counter))
   end
   return wrk.format("GET", "/api/comments?uri=" .. uri)
end

done = common.done
