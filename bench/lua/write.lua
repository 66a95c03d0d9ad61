-- POST /api/comments, each request a distinct valid comment (thread number
-- and counter in the name, email and body), spread over BENCH_THREADS threads.
-- BENCH_COUNTER_START offsets the counter, so that successive runs against one
-- database post new comments rather than duplicates (which are refused).
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local threads = tonumber(os.getenv("BENCH_THREADS") or "1000")
local headers = { ["Content-Type"] = "application/json" }
local counter = tonumber(os.getenv("BENCH_COUNTER_START") or "0")

setup = common.setup

function request()
   counter = counter + 1
   local uri = string.format("/posts/%d/", counter % threads)
   return wrk.format("POST", "/api/comments", headers, common.comment_json(uri, thread_id, counter))
end

done = common.done
