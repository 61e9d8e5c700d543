"""The Redis cache backend keeps one redis client per pool (torghut_site/cache.py) and behaves
as Django's."""

from __future__ import annotations

import os
import uuid
from typing import Any

from django.core.cache import CacheHandler

from torghut_site.cache import RedisCache


def _cache() -> RedisCache:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
    handler = CacheHandler(
        {"default": {"BACKEND": "torghut_site.cache.RedisCache", "LOCATION": url}}
    )
    cache = handler["default"]
    assert isinstance(cache, RedisCache)
    return cache


def test_one_client_serves_every_operation():
    cache = _cache()
    client: Any = cache._cache  # type: ignore[attr-defined]  # Django's private client
    assert client.get_client(write=True) is client.get_client(write=True)
    assert client.get_client(write=False) is client.get_client(write=True)  # one server


def test_it_stores_reads_counts_and_deletes_like_djangos():
    cache = _cache()
    key = f"cache-test-{uuid.uuid4().hex}"
    try:
        assert cache.get(key) is None
        cache.set(key, {"a": [1, 2]}, 30)
        assert cache.get(key) == {"a": [1, 2]}
        assert cache.add(key, "other", 30) is False
        cache.set(key, 5, 30)
        assert cache.incr(key, 2) == 7
        cache.delete(key)
        assert cache.get(key) is None
    finally:
        cache.delete(key)
