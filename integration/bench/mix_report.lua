-- The production mix for a closed-loop capacity run: the same weighted paths as the open-loop
-- mix scenario (sizes 100 B to 1 MiB, 2% upstream 5xx), picked at random per request.
local paths = {}
local function add(p, n) for _ = 1, n do paths[#paths + 1] = p end end
add("/bytes/100", 40); add("/bytes/1000", 25); add("/bytes/10000", 20); add("/bytes/100000", 10)
add("/bytes/1048576", 3); add("/status/500", 1); add("/status/503", 1)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
-- Prints wrk's latency percentiles (microseconds) and counts as one JSON line.
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, errors,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
