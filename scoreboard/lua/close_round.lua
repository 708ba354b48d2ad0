-- Close round N exactly once: count each box's status of that round into its SLA
-- counters (and the awd down/up shares), and record the statuses used in the event.
-- ARGV: prefix, round, now, then the active boxes as "team:service".
-- Returns 1 when closed now, 0 when it was closed before (idempotent).
local p = ARGV[1]
local n = ARGV[2]
if redis.call("SADD", p .. "closed", n) == 0 then return 0 end

local status_key = p .. "status:" .. n
local up_codes = {["101"] = true, ["105"] = true}
local down_codes = {["102"] = true, ["103"] = true, ["104"] = true}
local field = {["101"] = "ok", ["105"] = "rec", ["102"] = "corrupt", ["103"] = "mumble",
               ["104"] = "down", ["110"] = "error"}
local snapshot, ups, downs = {}, {}, {}
for i = 4, #ARGV do
  local box = ARGV[i]
  local st = redis.call("HGET", status_key, box)
  if st then
    local team, service = string.match(box, "^(%d+):(%d+)$")
    local key = p .. "ts:" .. box
    local name = field[st]
    if name then redis.call("HINCRBY", key, name, 1) end
    if st ~= "110" and name then redis.call("HINCRBY", key, "counted", 1) end
    ups[service] = ups[service] or {}
    downs[service] = downs[service] or 0
    if up_codes[st] then table.insert(ups[service], key)
    elseif down_codes[st] then
      downs[service] = downs[service] + 1
      redis.call("HINCRBY", key, "dn", 1)
    end
    table.insert(snapshot, box .. "=" .. st)
  end
end
for service, keys in pairs(ups) do
  local nd, nu = downs[service], #keys
  if nd > 0 and nu > 0 then
    for _, key in ipairs(keys) do redis.call("HINCRBY", key, "u:" .. nd .. ":" .. nu, 1) end
  end
end
redis.call("HSET", p .. "state", "closed_round", n)
redis.call("XADD", p .. "ev:round", "*", "type", "closed", "r", n, "t", ARGV[3],
  "boxes", table.concat(snapshot, " "))
return 1
