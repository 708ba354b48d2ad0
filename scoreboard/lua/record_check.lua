-- Record one box's check result for round N, unless N is already closed (a late worker
-- must not change a counted round) or, with only_if_absent, the box already has one.
-- ARGV: prefix, round, box "team:service", status, record JSON, only_if_absent (0/1),
--       team, service, public, private, detail JSON.
-- Returns 1 when recorded, 0 when refused.
local p, n, box = ARGV[1], ARGV[2], ARGV[3]
if redis.call("SISMEMBER", p .. "closed", n) == 1 then return 0 end
if ARGV[6] == "1" and redis.call("HEXISTS", p .. "status:" .. n, box) == 1 then return 0 end
redis.call("HSET", p .. "status:" .. n, box, ARGV[4])
redis.call("HSET", p .. "live_status", box, ARGV[4])
redis.call("HSET", p .. "check:" .. n, box, ARGV[5])
redis.call("XADD", p .. "ev:check", "*", "r", n, "team", ARGV[7], "service", ARGV[8],
  "status", ARGV[4], "public", ARGV[9], "private", ARGV[10], "detail", ARGV[11])
return 1
