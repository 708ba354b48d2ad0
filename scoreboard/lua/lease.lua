-- A lease held by one owner: renew (PEXPIRE) or release (DEL) only if we still own it.
-- KEYS: the lease key. ARGV: owner, op ("renew" or "release"), milliseconds.
-- Returns 1 when done, 0 when someone else holds it (or nobody does).
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == "release" then return redis.call("DEL", KEYS[1]) end
return redis.call("PEXPIRE", KEYS[1], ARGV[3])
