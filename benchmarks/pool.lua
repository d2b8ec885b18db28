-- wrk script: sends pre-built raw HTTP requests from a file, and reports the run as one JSON line.
--
--   wrk ... -s pool.lua URL -- REQUESTS_FILE MODE THREADS
--
-- REQUESTS_FILE holds records "<byte count>\n<raw HTTP/1.1 request>"; thread i takes records i, i+T, i+2T ...
-- MODE "cycle": each thread loops over its records until wrk's duration ends (repeated workloads).
-- MODE "once":  each request is sent exactly once (cold workloads); a thread stops when its records run out
--               and the throughput is counted over the time from its first request to its last response.
-- The JSON line (prefixed "RESULT ") gives counts, errors, non-2xx statuses and latency percentiles (µs).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[3])
  mode = args[2]
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  reqs = {}
  local pos, index = 1, 0
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local size = tonumber(data:sub(pos, newline - 1))
    if index % nthreads == id then
      table.insert(reqs, data:sub(newline + 1, newline + size))
    end
    index = index + 1
    pos = newline + size + 1
  end
  count = #reqs
  next_index, sent, received, non2xx, wrapped = 0, 0, 0, 0, 0
  first_sent, last_received = 0, 0
  stopped = false
  verified = false
end

-- a "once" thread is finished: stop its loop and tell the driver, which interrupts wrk's sleep (SIGINT)
function finish()
  if stopped then return end
  stopped = true
  io.stderr:write("THREAD-DONE\n")
  io.stderr:flush()
  wrk.thread:stop()
end

function request()
  if not verified then
    -- wrk calls thread 0's request() once before the run to check it (script_verify_request): not sent
    verified = true
    if id == 0 then return reqs[1] end
  end
  if first_sent == 0 then first_sent = now() end
  if next_index >= count then
    if mode == "once" then
      -- nothing left to send: an empty write leaves this connection idle while the others finish
      return ""
    end
    next_index = 0
    wrapped = wrapped + 1
  end
  next_index = next_index + 1
  sent = sent + 1
  return reqs[next_index]
end

function response(status, headers, body)
  received = received + 1
  last_received = now()
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if mode == "once" and received >= count then finish() end
end

function done(summary, latency, requests)
  local sent_total, received_total, non2xx_total, wrapped_total = 0, 0, 0, 0
  local start, latest = nil, 0
  for _, thread in ipairs(threads) do
    sent_total = sent_total + thread:get("sent")
    received_total = received_total + thread:get("received")
    non2xx_total = non2xx_total + thread:get("non2xx")
    wrapped_total = wrapped_total + thread:get("wrapped")
    local first = thread:get("first_sent")
    if first > 0 and (start == nil or first < start) then start = first end
    local last = thread:get("last_received")
    if last > latest then latest = last end
  end
  local active = 0
  if start ~= nil and latest > start then active = latest - start end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "received": %d, "sent": %d, "duration_us": %d, "active_s": %.6f, ' ..
    '"non2xx": %d, "wrapped": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
    summary.requests, received_total, sent_total, summary.duration, active,
    non2xx_total, wrapped_total, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
