-- wrk script for stampede's load tests.
--
-- Usage: wrk ... -s loadtest/wrk/stampede.lua URL -- PATH
--
-- Counts responses per status code and measures the latency of *successful* (2xx) responses
-- only, which wrk's own figures cannot do (they mix fast 503s with real answers). Every request
-- carries a unique X-Request-Id, which stampede echoes; the send time is kept per id, so a
-- response is matched to its request whatever connection it came on. Latencies go into
-- log-scale buckets 2% wide, merged across threads in done().
--
-- With a second argument "polite" (wrk ... -- PATH polite), a connection that got a 503 waits
-- for its Retry-After before its next request, as a well-behaved client would; by default
-- it retries at once, the worst case for the server.
--
-- done() prints one line: "STAMPEDE_WRK " followed by JSON (see loadtest/lib/wrkparse.py).
-- Like wrk itself this is closed-loop: a connection sends its next request only after the
-- previous answer, so a stalled server is offered less load and its stalls hide themselves
-- (coordinated omission). Requests still unanswered after --timeout are counted as timeouts
-- and are missing from the latency figures.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } stampede_timespec;
int clock_gettime(int clk_id, stampede_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("stampede_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local GROWTH = math.log(1.02)
local function bucket_of(us)
  if us < 1 then us = 1 end
  return math.floor(math.log(us) / GROWTH)
end

-- setup() runs in the main Lua state once per thread.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- The rest runs in each thread's own Lua state.
local path = "/"
sequence = 0
local sent = {}
codes = {}
ok_buckets = {}
ok_max = 0
ok_count = 0
ok_sum = 0

local polite = false
local retry_after_ms = 0

function init(args)
  if args[1] then path = args[1] end
  polite = args[2] == "polite"
end

-- wrk calls delay() right after response() for the same connection.
function delay()
  local ms = retry_after_ms
  retry_after_ms = 0
  return ms
end

function request()
  sequence = sequence + 1
  local id = "w" .. thread_id .. "-" .. sequence
  sent[id] = now_us()
  return wrk.format("GET", path, { ["X-Request-Id"] = id })
end

function response(status, headers, body)
  local key = tostring(status)
  codes[key] = (codes[key] or 0) + 1
  if polite and status == 503 then
    retry_after_ms = (tonumber(headers["Retry-After"]) or 1) * 1000
  end
  local id = headers["X-Request-Id"]
  local t0 = id and sent[id]
  if not t0 then return end
  sent[id] = nil
  if status >= 200 and status < 300 then
    local us = now_us() - t0
    local b = bucket_of(us)
    ok_buckets[b] = (ok_buckets[b] or 0) + 1
    ok_count = ok_count + 1
    ok_sum = ok_sum + us
    if us > ok_max then ok_max = us end
  end
end

local function json_map(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format('"%s":%d', tostring(k), v))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local all_codes, all_buckets = {}, {}
  local count, sum, max, sent = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("sequence")
    for k, v in pairs(t:get("codes")) do all_codes[k] = (all_codes[k] or 0) + v end
    for k, v in pairs(t:get("ok_buckets")) do all_buckets[k] = (all_buckets[k] or 0) + v end
    count = count + t:get("ok_count")
    sum = sum + t:get("ok_sum")
    if t:get("ok_max") > max then max = t:get("ok_max") end
  end
  local e = summary.errors
  io.write(string.format(
    'STAMPEDE_WRK {"duration_us":%d,"requests":%d,"sent":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"codes":%s,"ok":{"count":%d,"sum_us":%.0f,"max_us":%.0f,"growth":1.02,"buckets":%s},' ..
    '"all":{"p50_us":%d,"p99_us":%d,"max_us":%d}}\n',
    summary.duration, summary.requests, sent, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    json_map(all_codes), count, sum, max, json_map(all_buckets),
    latency:percentile(50), latency:percentile(99), latency.max))
end
