-- wrk script of bench/load.py: warm every connection up, then send the
-- timed requests bench/load.py hands out, timing each one.
--
-- bench/load.py runs wrk with as many threads as connections, so each
-- thread owns one connection and its delay(), request() and response()
-- calls take turns: one monotonic clock reading in request() and one in
-- response() give the latency of that very request. wrk's own latency
-- histogram is not used, because wrk 4.1.0 adds synthetic samples to it
-- (a coordinated omission correction derived from the run's wall time)
-- before done() sees it.
--
-- Phases of a thread, all decided in delay(), which wrk calls before
-- each request it sends on a connection (not before a request it sends
-- again after losing the connection):
--   1. BENCH_LOAD_WARM_UPS untimed requests.
--   2. WARM_LINE on stderr, then a blocking read of one byte, a ticket,
--      from the pipe BENCH_LOAD_TICKETS_FD. bench/load.py writes the
--      tickets once every thread has said it is warm, so that timing
--      starts on all connections at once. A ticket's value is the index
--      of the request to send (0-based), so the mix is sent in turn
--      across all connections.
--   3. Timed requests, one per ticket, until the pipe is closed and
--      empty; then FINISHED_LINE on stderr, and the thread stops. It
--      also stops if its connection is lost MAX_LOSSES_IN_A_ROW times
--      in a row (the server is gone).
-- wrk's main thread sleeps for the whole --duration even when every
-- thread has stopped; bench/load.py interrupts it (SIGINT, on which wrk
-- reports at once) when every thread has finished.
--
-- Script arguments (after "--" on wrk's command line) name files that
-- each hold one complete raw HTTP request, body included; they are read
-- in binary mode, as Lua strings hold any byte. done() runs in wrk's main
-- Lua state, which gets no script arguments, so the summary's path comes
-- from the environment, as BENCH_LOAD_SUMMARY; BENCH_LOAD_TIMEOUT is
-- wrk's --timeout in seconds.

local ffi = require("ffi")

ffi.cdef [[
typedef struct { long seconds; long nanoseconds; } bench_load_timespec;
int clock_gettime(int clock, bench_load_timespec *reading);
long read(int fd, void *buffer, unsigned long count);
]]

-- The clock Python's time.monotonic() reads, too.
local CLOCK_MONOTONIC = 1
local EINTR = 4
local WARM_LINE = "bench-load: thread warm\n"
local FINISHED_LINE = "bench-load: thread finished\n"
-- Longer than any run: the thread stops before this delay ends.
local STOPPED_DELAY_MS = 3600 * 1000
-- wrk sends a request again at once on a new connection after losing
-- one; this many losses in a row mean the server is gone, and the
-- thread gives up rather than spin until the time limit.
local MAX_LOSSES_IN_A_ROW = 5

local reading = ffi.new("bench_load_timespec")
local threads = {}

local function monotonic_seconds()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, reading)
   return tonumber(reading.seconds) + tonumber(reading.nanoseconds) * 1e-9
end

local function environment_number(name)
   local value = tonumber(os.getenv(name))
   if value == nil then
      error(name .. " is not a number")
   end
   return value
end

local function count(counts, kind)
   counts[kind] = (counts[kind] or 0) + 1
end

function setup(thread)
   threads[#threads + 1] = thread
   -- Warm-up requests start at a different request of the mix on each
   -- connection.
   thread:set("offset", #threads - 1)
end

-- What a thread keeps is global, because done() reads it with
-- thread:get, which sees only globals.
function init(args)
   requests = {}
   -- args[0] is the URL; the request files follow.
   for index = 1, #args do
      local file = assert(io.open(args[index], "rb"))
      requests[index] = file:read("*a")
      file:close()
   end
   tickets_fd = environment_number("BENCH_LOAD_TICKETS_FD")
   warm_ups_wanted = environment_number("BENCH_LOAD_WARM_UPS")
   timeout = environment_number("BENCH_LOAD_TIMEOUT")
   ticket = ffi.new("unsigned char[1]")
   current = offset % #requests + 1
   warm_ups_sent = 0
   warm = false
   timed = false
   outstanding = false
   losses_in_a_row = 0
   finished = false
   warm_ups_ok = 0
   warm_up_errors = {}
   errors = {}
   latencies = {}
end

-- Return the index of the next timed request, or nil once there is none.
local function take_ticket()
   while true do
      local got = tonumber(ffi.C.read(tickets_fd, ticket, 1))
      if got == 1 then
         return ticket[0] + 1
      elseif got == 0 then
         return nil
      elseif ffi.errno() ~= EINTR then
         error("reading a ticket failed with errno " .. ffi.errno())
      end
   end
end

-- Say on stderr that this thread is done, and stop it. A thread that
-- gives up during its warm-up says it is warm, too, so that the other
-- threads are not held back waiting for it.
local function finish()
   if not warm then
      warm = true
      io.stderr:write(WARM_LINE)
   end
   finished = true
   io.stderr:write(FINISHED_LINE)
   wrk.thread:stop()
end

function delay()
   if warm_ups_sent < warm_ups_wanted then
      warm_ups_sent = warm_ups_sent + 1
      current = (offset + warm_ups_sent - 1) % #requests + 1
      return 0
   end
   if not warm then
      warm = true
      io.stderr:write(WARM_LINE)
   end
   local index = take_ticket()
   if index == nil then
      finish()
      return STOPPED_DELAY_MS
   end
   timed = true
   current = index
   return 0
end

-- wrk also calls this once on the first thread before any thread runs,
-- to check the request; nothing is outstanding then.
function request()
   if outstanding then
      -- wrk lost the connection and sends the same request again on a
      -- new one.
      count(timed and errors or warm_up_errors, "connection lost")
      losses_in_a_row = losses_in_a_row + 1
      if losses_in_a_row >= MAX_LOSSES_IN_A_ROW then
         -- Sent once more, but never waited for: the thread stops.
         outstanding = false
         finish()
         return requests[current]
      end
   end
   outstanding = warm_ups_sent > 0 or timed
   sent_at = monotonic_seconds()
   if timed and began == nil then
      began = sent_at
   end
   return requests[current]
end

function response(status)
   local received_at = monotonic_seconds()
   local latency = received_at - sent_at
   local success = status >= 200 and status < 300
   outstanding = false
   losses_in_a_row = 0
   if not timed then
      if success then
         warm_ups_ok = warm_ups_ok + 1
      else
         count(warm_up_errors, "HTTP " .. status)
      end
      return
   end
   ended = received_at
   if not success then
      count(errors, "HTTP " .. status)
   elseif latency >= timeout then
      count(errors, "timeout")
   else
      latencies[#latencies + 1] = latency
   end
end

local function json_seconds(value)
   if value == nil then
      return "null"
   end
   return string.format("%.9f", value)
end

local function json_seconds_list(values)
   local items = {}
   for index, value in ipairs(values) do
      items[index] = json_seconds(value)
   end
   return "[" .. table.concat(items, ",") .. "]"
end

local function json_counts(counts)
   local items = {}
   for kind, number in pairs(counts) do
      items[#items + 1] = string.format('"%s":%d', kind, number)
   end
   return "{" .. table.concat(items, ",") .. "}"
end

local function json_thread(thread)
   return string.format(
      '{"warm":%s,"finished":%s,"timed":%s,"outstanding":%s,'
         .. '"warm_ups_ok":%d,"warm_up_errors":%s,"errors":%s,'
         .. '"began":%s,"ended":%s,"latencies":%s}',
      tostring(thread:get("warm")), tostring(thread:get("finished")),
      tostring(thread:get("timed")), tostring(thread:get("outstanding")),
      thread:get("warm_ups_ok"), json_counts(thread:get("warm_up_errors")),
      json_counts(thread:get("errors")), json_seconds(thread:get("began")),
      json_seconds(thread:get("ended")),
      json_seconds_list(thread:get("latencies")))
end

function done()
   local parts = {}
   for index, thread in ipairs(threads) do
      parts[index] = json_thread(thread)
   end
   local path = assert(os.getenv("BENCH_LOAD_SUMMARY"),
                       "BENCH_LOAD_SUMMARY is not set")
   local file = assert(io.open(path, "wb"))
   file:write('{"threads":[' .. table.concat(parts, ",") .. ']}\n')
   file:close()
end
