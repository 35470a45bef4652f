"""Redis limiter: one set of counters shared by every worker of every replica.

Each check is one round trip: a Lua script (run atomically by Redis) prunes the caller's buckets,
checks the batch cool-down, RPM, TPM and concurrency, and counts the request; the release after the
call is a second script.  Keys: ``aiproxy:limits:<subject>:req|tok`` (hashes second -> count, expiring
after the window) and ``...:con`` (sorted set of leases scored by expiry), ``aiproxy:limits:batch-cooldown``.
The scripts use several keys per call, so the server must be one Redis (primary and replicas),
not Redis Cluster.

Timeouts are short and retries off: a Redis that does not answer within ``SOCKET_TIMEOUT_SECONDS``
raises ``LimiterUnavailable`` at once and the failover limiter answers from the per-replica store.
The client's sockets are plain Python sockets, so under gunicorn's gevent workers a call yields to
other requests while it waits.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lib.limits.base import (
    LEASE_TTL_SECONDS,
    WINDOW_SECONDS,
    Lease,
    LimiterUnavailable,
    LimitName,
    StoreLimiter,
    refuse,
)

SOCKET_TIMEOUT_SECONDS = 0.25
PREFIX = "aiproxy:limits:"
_COOLDOWN_KEY = PREFIX + "batch-cooldown"

# KEYS: req, tok, con, cooldown. ARGV: now, rpm, tpm, concurrency (-1 = none), batch (0/1),
# lease id, lease ttl, window.  Answers {"ok", "0"} or {limit name, seconds to wait}.
_ADMIT = """
local now = tonumber(ARGV[1])
local sec = math.floor(now)
local window = tonumber(ARGV[8])
local cutoff = sec - window + 1
local rpm, tpm, conc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local function live(key)
  local flat = redis.call('HGETALL', key)
  local out, total = {}, 0
  for i = 1, #flat, 2 do
    local s, a = tonumber(flat[i]), tonumber(flat[i + 1])
    if s < cutoff then
      redis.call('HDEL', key, flat[i])
    else
      out[#out + 1] = {s, a}
      total = total + a
    end
  end
  table.sort(out, function(x, y) return x[1] < y[1] end)
  return out, total
end

local function wait(buckets, total, allowed)
  for _, b in ipairs(buckets) do
    total = total - b[2]
    if total <= allowed then return b[1] + window - now end
  end
  return window
end

if ARGV[5] == '1' then
  local ttl = redis.call('PTTL', KEYS[4])
  if ttl > 0 then return {'batch_backoff', tostring(ttl / 1000)} end
end
if rpm >= 0 then
  local b, t = live(KEYS[1])
  if t + 1 > rpm then return {'rpm', tostring(wait(b, t, rpm - 1))} end
end
if tpm >= 0 then
  local b, t = live(KEYS[2])
  if t >= tpm then return {'tpm', tostring(wait(b, t, tpm - 1))} end
end
if conc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc then return {'concurrency', '1'} end
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[6])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
end
if rpm >= 0 then
  redis.call('HINCRBY', KEYS[1], sec, 1)
  redis.call('EXPIRE', KEYS[1], window + 1)
end
return {'ok', '0'}
"""

# KEYS: tok, con. ARGV: now, tokens, lease id ('' = none), window.
_FINISH = """
local tokens = tonumber(ARGV[2])
if tokens > 0 then
  redis.call('HINCRBY', KEYS[1], math.floor(tonumber(ARGV[1])), tokens)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]) + 1)
end
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
return 1
"""


def _num(value: int | None) -> int:
    return -1 if value is None else value


class RedisLimiter(StoreLimiter):
    name = "redis"

    def __init__(self, url: str, *, client: redis.Redis | None = None) -> None:
        self.client = client or redis.Redis.from_url(
            url,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._admit = self.client.register_script(_ADMIT)
        self._finish = self.client.register_script(_FINISH)

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"redis: {type(exc).__name__}") from exc

    @staticmethod
    def _keys(subject: str) -> list[str]:
        return [f"{PREFIX}{subject}:req", f"{PREFIX}{subject}:tok", f"{PREFIX}{subject}:con"]

    def admit(self, lease: Lease, now: float, label: str) -> None:
        limits = lease.limits
        verdict, wait = self._run(
            self._admit,
            [*self._keys(lease.subject), _COOLDOWN_KEY],
            [
                repr(now),
                _num(limits.rpm),
                _num(limits.tpm),
                _num(limits.concurrency),
                "1" if limits.priority == "batch" else "0",
                lease.lease_id,
                LEASE_TTL_SECONDS,
                WINDOW_SECONDS,
            ],
        )
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict != "ok":
            name: LimitName = verdict  # type: ignore[assignment]
            raise refuse(name, label, limits, float(wait))

    def finish(self, lease: Lease) -> None:
        _, tok, con = self._keys(lease.subject)
        tokens = lease.tokens if lease.limits.tpm is not None else 0
        lease_id = lease.lease_id if lease.limits.concurrency is not None else ""
        self._run(self._finish, [tok, con], [repr(self.now()), tokens, lease_id, WINDOW_SECONDS])

    def note_throttle(self, seconds: float) -> None:
        try:
            self.client.set(_COOLDOWN_KEY, "1", px=max(1, int(seconds * 1000)))
        except redis.RedisError as exc:
            raise LimiterUnavailable(f"redis: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.client.close()
