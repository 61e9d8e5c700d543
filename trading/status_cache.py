"""The short-lived cache of `/trading/status`'s body (`trading.selectors.trading.trading_status`).

Each process keeps the last body it computed for TRADING_STATUS_CACHE_SECONDS. An entry is
used only while the shared generation key (in the default cache, so every process sees it) and
the feature flags' values are the ones it was computed under. Every change of a safety latch
(kill switch set or released, emergency stop latched, cleared or recovered) calls
`status_cache_invalidate()`, which moves the generation on after the commit: the next status in
every process is computed afresh, so its safety fields are never older than the change. A flag
flipped in Flipt changes the flag values, so it is seen as soon as this process's flag cache
(TRADING_FEATURE_FLAGS_CACHE_SECONDS) sees it, exactly as without this cache. Lanes come from
TRADING_LANES, which only a restart changes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "trading:status-generation"
_clock = time.monotonic  # replaced by tests


@dataclass(frozen=True)
class _Entry:
    key: Hashable
    expires: float  # _clock()
    body: dict[str, Any]


_entry: _Entry | None = None
_lock = threading.Lock()


def status_generation() -> str:
    """The shared generation; set to a fresh value when missing (first use, cache flushed or
    evicted), so a missing key can never match an entry computed under an older one."""
    generation: str | None = cache.get(GENERATION_KEY)
    if generation is None:
        fresh = uuid.uuid4().hex
        cache.add(GENERATION_KEY, fresh, None)
        generation = cache.get(GENERATION_KEY) or fresh
    return generation


def _forget() -> None:
    global _entry
    _entry = None
    cache.set(GENERATION_KEY, uuid.uuid4().hex, None)


def status_cache_invalidate() -> None:
    """A safety latch changed: drop this process's entry and move the shared generation on,
    now and again after the commit (a status computed between the two from the old rows is
    dropped too). Nothing to do while TRADING_STATUS_CACHE_SECONDS is 0 (nothing is cached)."""
    if not settings.TRADING_STATUS_CACHE_SECONDS:
        return
    _forget()
    transaction.on_commit(_forget)


def status_cached(*, key: Hashable, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """This process's body for `key` (the generation is added to it) while it is younger than
    TRADING_STATUS_CACHE_SECONDS, else `compute()`'s (0: always computed). The body is shared
    between requests: readers must not change it."""
    global _entry
    ttl = settings.TRADING_STATUS_CACHE_SECONDS
    if not ttl:
        return compute()
    full_key = (status_generation(), key)
    entry = _entry
    now = _clock()
    if entry is not None and entry.key == full_key and entry.expires > now:
        return entry.body
    with _lock:  # one computation per process at a time; the others wait for its answer
        entry = _entry
        if entry is not None and entry.key == full_key and entry.expires > _clock():
            return entry.body
        body = compute()
        _entry = _Entry(full_key, _clock() + ttl, body)
        return body
