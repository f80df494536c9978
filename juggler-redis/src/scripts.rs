//! The Lua that runs inside Redis: each script is one atomic step.
//!
//! A document is two keys under one hash tag: a hash (`epoch`, `head`
//! version, snapshot `version` and `data`, where it was seeded from, and
//! when) and a stream whose entry ids are `<version>-0`, each with the
//! epoch (`e`) and the JSON Patch (`p`).

use std::sync::LazyLock;

use redis::Script;

/// The milliseconds of Redis's clock, as a Lua expression prefix.
const NOW: &str = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// A write: checks the expected epoch and version if given, refuses while
/// a fresh seed settles, bumps `head` and appends the patch to the stream,
/// trimmed with `MAXLEN ~` unless that would cut entries newer than the
/// snapshot. ARGV: expected epoch or '', expected version or '', patch,
/// max stream length, settle ms. Returns {'ok', epoch, head},
/// {'conflict', epoch, head}, {'settling'} or {'missing'}.
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{}",
        r"
local s = redis.call('HMGET', KEYS[1], 'epoch', 'head', 'version', 'seeded', 'fresh')
if not s[1] then return {'missing'} end
local epoch, head, snapver = s[1], tonumber(s[2]), tonumber(s[3])
if ARGV[1] ~= '' and (ARGV[1] ~= epoch or tonumber(ARGV[2]) ~= head) then
  return {'conflict', epoch, tostring(head)}
end
if now < tonumber(s[4]) + tonumber(ARGV[5]) then return {'settling'} end
head = head + 1
if s[5] == '1' then redis.call('HSET', KEYS[1], 'head', head, 'fresh', '0')
else redis.call('HSET', KEYS[1], 'head', head) end
local id = string.format('%d-0', head)
local maxlen = tonumber(ARGV[4])
if head - snapver <= maxlen then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, id, 'e', epoch, 'p', ARGV[3])
else
  redis.call('XADD', KEYS[2], id, 'e', epoch, 'p', ARGV[3])
end
return {'ok', epoch, string.format('%d', head)}
"
    ))
});

/// Seeds a document that Redis does not have, like `SET NX`: the first
/// seed wins, except that while nobody has written on it a more advanced
/// copy (of the same origin epoch at a higher version, or any copy with a
/// history over a fresh node's initial value) replaces it under a new
/// epoch. ARGV: new epoch, origin epoch ('' for none), origin version,
/// data. Returns {'seeded' | 'exists', epoch}.
pub(crate) static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{}",
        r"
local s = redis.call('HMGET', KEYS[1], 'epoch', 'fresh', 'origin_epoch', 'origin_version')
if s[1] then
  local better = s[2] == '1' and (
    (s[3] == '' and ARGV[2] ~= '') or
    (s[3] == ARGV[2] and ARGV[2] ~= '' and tonumber(ARGV[3]) > tonumber(s[4])))
  if not better then return {'exists', s[1]} end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'head', ARGV[3], 'version', ARGV[3],
  'data', ARGV[4], 'origin_epoch', ARGV[2], 'origin_version', ARGV[3],
  'fresh', '1', 'seeded', now)
return {'seeded', ARGV[1]}
"
    ))
});

/// The snapshot and every stream entry after it, in one atomic read.
/// Returns false, or {epoch, version, data, origin epoch, origin version,
/// entries}.
pub(crate) static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local s = redis.call('HMGET', KEYS[1], 'epoch', 'version', 'data', 'origin_epoch', 'origin_version')
if not s[1] then return false end
local entries = redis.call('XRANGE', KEYS[2], '(' .. s[2] .. '-0', '+')
return {s[1], s[2], s[3], s[4], s[5], entries}
",
    )
});

/// Stores a newer snapshot of the same epoch. ARGV: epoch, version, data.
/// Returns 1 if stored.
pub(crate) static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local s = redis.call('HMGET', KEYS[1], 'epoch', 'head', 'version')
if s[1] ~= ARGV[1] then return 0 end
local v = tonumber(ARGV[2])
if v <= tonumber(s[3]) or v > tonumber(s[2]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'data', ARGV[3])
return 1
",
    )
});

/// A node's presence: sets (ARGV[2] non-empty) or removes (ARGV[2] = '',
/// ARGV[4] = 'del') its part with a deadline of now + ttl, drops every part
/// past its deadline, and publishes on ARGV[5] if anything changed. KEYS:
/// the parts hash, the deadlines sorted set. ARGV: node, part, ttl ms,
/// mode ('put' | 'del' | 'read'), channel. Returns the flat hash.
pub(crate) static PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}{}",
        r"
local changed = false
if ARGV[4] == 'del' then
  changed = redis.call('HDEL', KEYS[1], ARGV[1]) == 1
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ARGV[4] == 'put' then
  if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
    changed = true
  end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, node in ipairs(dead) do
  redis.call('HDEL', KEYS[1], node)
  redis.call('ZREM', KEYS[2], node)
  changed = true
end
if changed then redis.call('PUBLISH', ARGV[5], 'changed') end
return redis.call('HGETALL', KEYS[1])
"
    ))
});
