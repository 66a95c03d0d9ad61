-- GET BENCH_PATH (the benchmark thread); with BENCH_ETAG set, sends it as
-- If-None-Match so every answer is a 304.
local common = dofile((os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/common.lua")

wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH") or "/api/comments?uri=/bench/thread-50/"
local etag = os.getenv("BENCH_ETAG")
if etag and etag ~= "" then
   wrk.headers["If-None-Match"] = etag
end
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end

done = common.done
