-- Like write.lua (POST /api/comments, each a distinct valid comment over
-- BENCH_THREADS threads), but the counter starts at BENCH_COUNTER_BASE, so
-- that successive wrk runs against one server never repeat a comment (a
-- repeat is a 409 duplicate, which is cheaper than an accepted submission).
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

local threads = tonumber(os.getenv("BENCH_THREADS") or "1000")
local headers = { ["Content-Type"] = "application/json" }
local counter = tonumber(os.getenv("BENCH_COUNTER_BASE") or "0")

setup = common.setup

function request()
   counter = counter + 1
   local uri = string.format("/posts/%d/", counter % threads)
   return wrk.format("POST", "/api/comments", headers, common.comment_json(uri, thread_id, counter))
end

done = common.done
