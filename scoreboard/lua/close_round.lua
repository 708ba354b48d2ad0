-- Close round N exactly once: count each active box's status of that round into its
-- counters by the scoring policy's rules (scoring/policy.py RULES, given as ARGV[4]),
-- share awd's down points, record the statuses used in the event, and keep every
-- scored box's counters as they stand after the close (the per-round score history).
-- ARGV: prefix, round, now, rules "code=field:judged:awd_role ...",
--       active boxes "team:service ..." (checked this round), scored boxes "team:service ..."
--       (every box the ranking shows, for the history).
-- Returns 1 when closed now, 0 when it was closed before (idempotent).
local p = ARGV[1]
local n = ARGV[2]
if redis.call("SADD", p .. "closed", n) == 0 then return 0 end

local rules = {}
for code, field, judged, role in string.gmatch(ARGV[4], "(%d+)=([%w_]+):(%d):(%a+)") do
  rules[code] = {field = field, judged = judged == "1", role = role}
end
local unchecked = "0"

local status_key = p .. "status:" .. n
local snapshot, ups, payers = {}, {}, {}
for box in string.gmatch(ARGV[5], "%S+") do
  local st = redis.call("HGET", status_key, box) or unchecked
  local r = rules[st] or rules["110"]
  local service = string.match(box, "^%d+:(%d+)$")
  local key = p .. "ts:" .. box
  redis.call("HINCRBY", key, r.field, 1)
  redis.call("HINCRBY", key, "rounds", 1)
  if r.judged then redis.call("HINCRBY", key, "counted", 1) end
  ups[service] = ups[service] or {}
  payers[service] = payers[service] or 0
  if r.role == "share" then
    table.insert(ups[service], key)
  elseif r.role == "pay" then
    payers[service] = payers[service] + 1
    redis.call("HINCRBY", key, "dn", 1)
  end
  table.insert(snapshot, box .. "=" .. st)
end
for service, keys in pairs(ups) do
  local nd, nu = payers[service], #keys
  if nd > 0 and nu > 0 then
    for _, key in ipairs(keys) do redis.call("HINCRBY", key, "u:" .. nd .. ":" .. nu, 1) end
  end
end

local history = {}
for box in string.gmatch(ARGV[6], "%S+") do
  local flat = redis.call("HGETALL", p .. "ts:" .. box)
  if #flat > 0 then
    local counters = {}
    for i = 1, #flat, 2 do counters[flat[i]] = tonumber(flat[i + 1]) end
    history[box] = counters
  end
end
redis.call("HSET", p .. "history", n, cjson.encode(history))

redis.call("HSET", p .. "state", "closed_round", n)
redis.call("XADD", p .. "ev:round", "*", "type", "closed", "r", n, "t", ARGV[3],
  "boxes", table.concat(snapshot, " "))
return 1
