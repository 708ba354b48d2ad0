-- Accept or deny a batch of pre-validated flags for one attacker, atomically.
-- Each accepted flag moves its attack score in the same step and is appended to the
-- capture stream. The caller has already checked format, MAC, own flag and NOP team.
--
-- ARGV: prefix, attacker, formula, lifetime, the status codes that count as up when the
--       attacker's service must be up to submit ("" when not required), then the flags as one string of
--       lines "flag victim service flag_round\n" (one argument: cheap to send and parse),
-- Returns one entry per flag: "A:<n>" accepted (n: capture count for faust, points moved
-- for rating, robbers of that box's flag round for awd, 0 when the attacker had robbed it), or a denial code:
-- "D" duplicate, "O" too old, "I" invalid, "N" not started, "P" paused, "X" over,
-- "S" attacker's service not up. Denials are neither counted nor streamed here: the process
-- that answers counts every denial in memory and adds them up about once a second.
local p = ARGV[1]
local attacker = ARGV[2]
local formula = ARGV[3]
local lifetime = tonumber(ARGV[4])
local up_codes = {}
for code in string.gmatch(ARGV[5], "%d+") do up_codes[code] = true end
local require_up = ARGV[5] ~= ""

local state = redis.call("HMGET", p .. "state", "state", "round")
local out = {}
local batch = {}
for flag, victim, service, flag_round in string.gmatch(ARGV[6], "(%S+) (%d+) (%d+) (%d+)\n") do
  batch[#batch + 1] = {flag, victim, service, tonumber(flag_round)}
end
local n = #batch
local deny = nil
if state[1] == "paused" then deny = "P"
elseif state[1] == "over" then deny = "X"
elseif state[1] ~= "running" then deny = "N" end
if deny then
  for i = 1, n do out[i] = deny end
  return out
end
local round = tonumber(state[2] or "0")

-- Key of a (team, service) box's counters, built once per batch.
local box_keys = {}
local function box_key(team, service)
  local id = team .. ":" .. service
  local key = box_keys[id]
  if not key then
    key = p .. "ts:" .. id
    box_keys[id] = key
  end
  return key
end

-- Counter moves are summed here and written once per (key, field) at the end, in the order
-- first touched: nothing in this script reads them back, and the script is atomic, so a
-- batch of 256 flags writes a few dozen fields instead of over 500 (half the AOF, a third
-- less Redis CPU per accepted flag). Points under rating are read back: they stay HSETs.
local moves, moved = {}, {}
local function add(key, field, by)
  local id = key .. "\0" .. field
  local sum = moves[id]
  if not sum then moved[#moved + 1] = {key, field, id} end
  moves[id] = (sum or 0) + by
end

-- Move one capture from histogram bucket k-1 to k for every previous member of a set.
local function shift(set_key, skip, field, k, service)
  if k == 1 then return end
  for _, m in ipairs(redis.call("SMEMBERS", set_key)) do
    if m ~= skip then
      local key = box_key(m, service)
      add(key, field .. (k - 1), -1)
      add(key, field .. k, 1)
    end
  end
end

-- The attacker's own box of this service is up (or not yet checked).
local function service_up(service)
  local st = redis.call("HGET", p .. "live_status", attacker .. ":" .. service)
  return (not st) or up_codes[st] == true
end

local accepted = 0
for i = 1, n do
  local flag, victim, service, flag_round = batch[i][1], batch[i][2], batch[i][3], batch[i][4]
  local att_key = box_key(attacker, service)
  local vic_key = box_key(victim, service)
  if flag_round > round then
    out[i] = "I"
  elseif round - flag_round >= lifetime then
    out[i] = "O"
  elseif require_up and not service_up(service) then
    out[i] = "S"
  else
    local cap_key = p .. "cap:" .. flag
    if redis.call("SADD", cap_key, attacker) == 0 then
      out[i] = "D"
    else
      local c = redis.call("SCARD", cap_key)
      local amount = c
      if formula == "faust" then -- captured and lost are the histograms' sums
        shift(cap_key, attacker, "a:", c, service)
        add(att_key, "a:" .. c, 1)
        if c > 1 then add(vic_key, "d:" .. (c - 1), -1) end
        add(vic_key, "d:" .. c, 1)
      elseif formula == "rating" then
        local initial = tonumber(redis.call("HGET", p .. "rating", "initial"))
        local step = tonumber(redis.call("HGET", p .. "rating", "step"))
        local limit = tonumber(redis.call("HGET", p .. "rating", "limit"))
        local att = tonumber(redis.call("HGET", att_key, "pts") or initial)
        local vic = tonumber(redis.call("HGET", vic_key, "pts") or initial)
        local bucket = math.floor((att - vic) / step)
        if bucket > limit then bucket = limit elseif bucket < -limit then bucket = -limit end
        local delta = tonumber(redis.call("HGET", p .. "rating", "d:" .. bucket))
        if delta > vic then delta = vic end
        redis.call("HSET", att_key, "pts", att + delta)
        redis.call("HSET", vic_key, "pts", vic - delta)
        add(att_key, "captured", 1)
        if c == 1 then add(vic_key, "lost", 1) end
        amount = delta
      else -- awd: a box's points for a flag round are shared by all who stole that round's flags
        local robbers = p .. "awd:" .. flag_round .. ":" .. victim .. ":" .. service
        if redis.call("SADD", robbers, attacker) == 1 then
          local k = redis.call("SCARD", robbers)
          shift(robbers, attacker, "w:", k, service)
          add(att_key, "w:" .. k, 1)
          if k == 1 then add(vic_key, "robbed", 1) end
          amount = k
        else
          amount = 0
        end
        add(att_key, "captured", 1)
        if c == 1 then add(vic_key, "lost", 1) end
      end
      redis.call("XADD", p .. "ev:capture", "*", "a", attacker, "v", victim, "s", service,
        "r", round, "fr", flag_round, "f", flag)
      accepted = accepted + 1
      out[i] = "A:" .. amount
    end
  end
end
for _, m in ipairs(moved) do
  local by = moves[m[3]]
  if by ~= 0 then redis.call("HINCRBY", m[1], m[2], by) end
end
if accepted > 0 then
  redis.call("HINCRBY", p .. "counters", "accepted", accepted)
end
return out
