"""DRF's rate throttles with their request log kept as a Redis sorted set.

DRF's `SimpleRateThrottle` keeps each client's log of request times as one pickled list in the
cache: every request reads the whole list, drops the old times and writes it back. At the user
rate (API_THROTTLE_USER, 2400/min) a busy client's list holds thousands of times, so each
request moves tens of kilobytes through Redis and the pickler (about 2 ms measured, a quarter
of a `/trading/decisions` page), and two requests at once can both read the list before either
writes it back, so one of them is not counted.

Here, when the default cache is Redis, one Lua script does the same steps atomically on a sorted
set of the request times: drop the times older than the window, count the rest, and record this
request only if it is allowed (DRF does not record a refused one). The limits, the window and
the `Retry-After` wait are DRF's; without Redis (tests' local memory, the file cache of a
laptop) DRF's own code runs. The scoped throttles (`control`, `webhook`: tens a minute, short
logs) stay DRF's.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import throttling
from rest_framework.request import Request

SLIDING_LOG = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return {1, n + 1, ARGV[2]}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, n, oldest[2]}
"""

_scripts: dict[int, Any] = {}


def _script() -> Any | None:
    """The script registered on the default cache's Redis client, or None without Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    redis_client: Any = getattr(backend, "_cache")  # noqa: B009 - not in the stubs
    client = redis_client.get_client(write=True)
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts.setdefault(id(client), client.register_script(SLIDING_LOG))
    return script


class RedisLogMixin:
    """`SimpleRateThrottle.allow_request` on a Redis sorted set (DRF's own without Redis)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        this: Any = self
        script = _script()
        if script is None or this.rate is None:
            return bool(super().allow_request(request, view))  # type: ignore[misc]
        this.key = this.get_cache_key(request, view)
        if this.key is None:
            return True
        this.now = this.timer()
        allowed, count, oldest = script(
            # not DRF's key: a process of the previous release reads that one as a pickled list
            keys=[caches["default"].make_key(f"{this.key}:log")],
            args=[
                repr(this.now - this.duration),
                repr(this.now),
                this.num_requests,
                f"{this.now!r}:{uuid.uuid4().hex}",
                int(this.duration) + 1,
            ],
        )
        if allowed:
            return True
        # only a refused request's wait() reads the log (newest first: its length, the oldest
        # time last); an allowed one skips building a list as long as the log (the rate's size)
        this.history = [float(oldest)] * int(count)
        return False


class AnonRateThrottle(RedisLogMixin, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(RedisLogMixin, throttling.UserRateThrottle):
    pass
