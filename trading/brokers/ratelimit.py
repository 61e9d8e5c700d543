"""A per-minute request budget shared by every process through the Django cache.

With Redis as the cache, all workers of a lane draw from one budget; the counter key expires
with its minute. Over budget, callers get False and must not call the broker (no sleeping).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.cache import cache


class RateLimiter:
    def __init__(
        self, *, key: str, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.per_minute = per_minute
        self._clock = clock

    def acquire(self) -> bool:
        window = int(self._clock() // 60)
        key = f"ratelimit:{self.key}:{window}"
        cache.add(key, 0, timeout=120)
        try:
            used = cache.incr(key)
        except ValueError:  # the key expired between add and incr
            cache.add(key, 1, timeout=120)
            used = 1
        return used <= self.per_minute
