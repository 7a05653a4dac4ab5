-- wrk script for stampede's load tests.
--
-- Usage: wrk ... -s loadtest/wrk/stampede.lua URL -- PATH [polite] [deadline=MS] [phase=NAME]
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
-- With phase=NAME, done() also prints the phase's line for people (scripts/load): goodput, the
-- 2xx answered within deadline=MS (default 2000) per second, which is what a client with that
-- deadline got; then 503s, late answers, timeouts, errors, and the 2xx p50/p99. wrk's own
-- "Requests/sec" counts every answer, fast 503s included, and is not goodput.
--
-- done() prints one line: "STAMPEDE_WRK " followed by JSON (see loadtest/stampede_load/wrkparse.py).
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

-- Named arguments: init() keeps them in its thread's globals, where done() reads them.
local function named(args, key)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k == key then return v end
  end
  return nil
end

phase_label = nil
deadline_ms = 2000

function init(args)
  if args[1] then path = args[1] end
  for i = 2, #args do
    if args[i] == "polite" then polite = true end
  end
  phase_label = named(args, "phase")
  deadline_ms = tonumber(named(args, "deadline") or "2000")
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

local function grouped(n)
  local s = string.format("%d", math.floor(n + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

local function duration_text(us)
  if us >= 1e6 then return string.format("%.2fs", us / 1e6) end
  return string.format("%.0fms", us / 1e3)
end

-- The latency below which `q` of the 2xx answers fell, from the merged buckets.
local function percentile(buckets, count, q)
  if count == 0 then return nil end
  local keys = {}
  for b in pairs(buckets) do table.insert(keys, b) end
  table.sort(keys)
  local rank, seen = q * count, 0
  for _, b in ipairs(keys) do
    seen = seen + buckets[b]
    if seen >= rank then return math.exp((b + 1) * GROWTH) end
  end
  return nil
end

local function phase_line(label, deadline_ms, summary, codes, buckets, count)
  local seconds = summary.duration / 1e6
  local within = 0
  for b, n in pairs(buckets) do
    if math.exp((b + 1) * GROWTH) <= deadline_ms * 1e3 then within = within + n end
  end
  local n503 = codes["503"] or 0
  local e = summary.errors
  local p50, p99 = percentile(buckets, count, 0.50), percentile(buckets, count, 0.99)
  io.write(string.format(
    "STAMPEDE_LINE %-7s %3.0fs: goodput %s/s (2xx within %gs) | 503 %s/s | " ..
    "2xx too late %s | timeouts %s | errors %s | 2xx p50 %s p99 %s | wrk's Requests/sec %s " ..
    "(counts 503s too: not goodput)\n",
    label, seconds, grouped(within / seconds), deadline_ms / 1000,
    grouped(n503 / seconds), grouped(count - within), grouped(e.timeout),
    grouped(e.connect + e.read + e.write), p50 and duration_text(p50) or "-",
    p99 and duration_text(p99) or "-", grouped(summary.requests / seconds)))
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
  local label = threads[1] and threads[1]:get("phase_label")
  if label then
    phase_line(label, threads[1]:get("deadline_ms"), summary, all_codes, all_buckets, count)
  end
end
