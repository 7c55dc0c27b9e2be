-- Requests of one benchmark scenario, for wrk (bench/loadgen.py builds the command):
--
--   wrk -s load.lua http://127.0.0.1:PORT -- PATH IDS_FILE CREATE_RATIO BODY_FILE CLIENTS \
--                                             CREATE_PATH CONTENT_TYPE
--
-- PATH         a GET path; "{id}" in it is replaced by an id from IDS_FILE
-- IDS_FILE     one paste id a line, drawn at random per request; "-": PATH as is
-- CREATE_RATIO share of requests that are creates (0: reads only, 1: creates only)
-- BODY_FILE    the body of a create (POST CREATE_PATH); "-": none
-- CLIENTS      requests carry X-Forwarded-For with one of this many client
--              addresses (documentation ranges, RFC 5737), as a reverse proxy
--              in front of the service would send; 0: no such header
-- CREATE_PATH  where creates go (default /api/v1/pastes; a peer has its own)
-- CONTENT_TYPE the creates' Content-Type (default application/json)
--
-- Every request is formatted once, in init, so wrk spends its time sending,
-- not building strings. done() prints one line "BENCH_JSON {...}" for the harness.

local reads = {}
local creates = {}
local ratio = 0
local clients = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- The headers of the n-th request: its client's address, when there are clients.
local function headers(n, extra)
  local h = extra or {}
  if clients > 0 then
    local client = n % clients
    local net = client < 254 and "203.0.113." or "198.51.100."
    h["X-Forwarded-For"] = net .. (client % 254 + 1)
  end
  return h
end

function init(args)
  local path, ids_file, body_file = args[1], args[2], args[4]
  ratio = tonumber(args[3]) or 0
  clients = tonumber(args[5]) or 0
  local create_path = args[6] or "/api/v1/pastes"
  local content_type = args[7] or "application/json"
  if ids_file ~= "-" then
    for id in io.lines(ids_file) do
      if id ~= "" then
        reads[#reads + 1] = wrk.format("GET", (path:gsub("{id}", id)), headers(#reads))
      end
    end
  else
    reads[1] = wrk.format("GET", path, headers(0))
  end
  if body_file ~= "-" then
    local body = read_file(body_file)
    for n = 0, math.max(clients, 1) - 1 do
      local h = headers(n, { ["Content-Type"] = content_type })
      creates[#creates + 1] = wrk.format("POST", create_path, h, body)
    end
  end
  -- Each thread its own sequence: unseeded, they would all draw the same ids.
  math.randomseed(os.time() * 100 + (thread_no or 0))
end

function request()
  if #creates > 0 and (ratio >= 1 or math.random() < ratio) then
    return creates[math.random(#creates)]
  end
  return reads[math.random(#reads)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors_connect":%d,"errors_read":%d,"errors_write":%d,'
      .. '"errors_status":%d,"errors_timeout":%d,'
      .. '"latency_mean_us":%.1f,"latency_max_us":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
