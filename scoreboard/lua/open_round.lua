-- Open round N once: later calls with N or lower change nothing.
-- ARGV: prefix, round, now.  Returns 1 when opened, 0 when already at or past N.
local p = ARGV[1]
local n = tonumber(ARGV[2])
local current = tonumber(redis.call("HGET", p .. "state", "round") or "0")
if current >= n then return 0 end
redis.call("HSET", p .. "state", "round", n, "round_start", ARGV[3])
redis.call("XADD", p .. "ev:round", "*", "type", "opened", "r", n, "t", ARGV[3])
return 1
