//! The control store's Lua scripts: each runs atomically in Redis, which is what makes leases,
//! timeline writes and channel records safe with several pods writing.

/// Takes a channel's lease when it is free or already ours, for `ARGV[2]` ms.
pub(super) const HOLD_LEASE: &str = r"
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Gives a channel's lease up when it is ours.
pub(super) const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Writes a timeline unless the stored one got further (the same rule as
/// [`TimelineProgress::may_replace`]) with its tail (`KEYS[4]`, what followers read), then announces it.
pub(super) const SHARE_TIMELINE: &str = r"
local stored = redis.call('GET', KEYS[2])
if stored then
  local n, u = string.match(stored, '^(%d+):(%-?%d+)$')
  local mn, mu = tonumber(ARGV[2]), tonumber(ARGV[3])
  if n and (mn < tonumber(n) or (mn == tonumber(n) and mu < tonumber(u))) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2] .. ':' .. ARGV[3])
redis.call('SET', KEYS[4], ARGV[4])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1
";

/// Adds a channel record unless one with its id exists (`0`) or `ARGV[3]` channels do (`-1`), clears
/// its deletion mark and announces it.
pub(super) const CREATE_CHANNEL: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1
";

/// Replaces a channel record only if it is still `ARGV[2]` (compare-and-set), and announces it.
pub(super) const UPDATE_CHANNEL: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1
";

/// Removes a channel record and its shared timeline (whole, progress, tail), marks the id deleted for `ARGV[2]` ms (so no
/// pod shares it back) and announces it, to the pods holding it and those following it; returns
/// whether the record existed.
pub(super) const FORGET_CHANNEL: &str = r"
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[7])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[2])
redis.call('PUBLISH', KEYS[5], ARGV[1])
redis.call('PUBLISH', KEYS[6], 'deleted')
return existed
";

/// Shares a channel record back (a control store that lost its data) unless the channel has one or
/// was deleted.
pub(super) const RESTORE_CHANNEL: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
";
