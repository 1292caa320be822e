-- The production mix for a closed-loop capacity run: the same weighted paths as the open-loop
-- mix scenario (sizes 100 B to 1 MiB, 2% upstream 5xx), picked at random per request.
local paths = {}
local function add(p, n) for _ = 1, n do paths[#paths + 1] = p end end
add("/bytes/100", 40); add("/bytes/1000", 25); add("/bytes/10000", 20); add("/bytes/100000", 10)
add("/bytes/1048576", 3); add("/status/500", 1); add("/status/503", 1)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
