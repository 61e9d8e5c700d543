"""The user and anonymous throttles keep their request log as a Redis sorted set
(torghut_site/throttling.py) and answer exactly as DRF's own for the same requests."""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import caches
from rest_framework import throttling as drf
from rest_framework.views import APIView

from torghut_site import throttling

TIMES = [0.0, 1.0, 2.0, 10.0, 59.9, 60.0, 60.5, 60.6, 61.5, 62.0, 125.0, 125.1]


@pytest.fixture
def redis_cache(settings):
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/8")
    settings.CACHES = {
        "default": {
            "BACKEND": "torghut_site.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}",
        }
    }
    yield caches["default"]
    caches["default"].clear()


class OursThree(throttling.UserRateThrottle):
    rate = "3/min"


class DrfThree(drf.UserRateThrottle):
    rate = "3/min"


def _answers(throttle_class, user_pk: int) -> list[tuple[bool, float | None]]:
    request = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=user_pk))
    out = []
    for t in TIMES:
        throttle = throttle_class()
        throttle.timer = lambda t=t: 1_000_000.0 + t
        allowed = throttle.allow_request(request, None)
        out.append((allowed, None if allowed else round(throttle.wait(), 6)))
    return out


EXPECTED = [
    (True, None),
    (True, None),
    (True, None),
    (False, 50.0),  # 60 s after the oldest of the three
    (False, 0.1),
    (True, None),  # 60.0: the first left the window (DRF drops a time exactly 60 s old)
    (False, 0.5),
    (False, 0.4),
    (True, None),  # 61.5: 2.0 and 60.0 in the window (the refused ones were not recorded)
    (True, None),  # 62.0: 2.0 has left it
    (True, None),
    (True, None),
]


def test_the_redis_log_answers_as_drfs_list(redis_cache):
    assert throttling._script() is not None
    assert _answers(OursThree, 7) == EXPECTED


def test_drfs_list_answers_the_same(settings):
    caches["default"].clear()
    assert _answers(DrfThree, 8) == EXPECTED


def test_a_refused_request_is_not_recorded(redis_cache):
    request: Any = SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=9))
    for t, expected in ((0.0, True), (1.0, True), (2.0, True), (3.0, False), (4.0, False)):
        throttle = OursThree()
        throttle.timer = lambda t=t: 500.0 + t
        assert throttle.allow_request(request, None) is expected
    key = redis_cache.make_key("throttle_user_9:log")
    client = redis_cache._cache.get_client(write=True)
    assert client.zcard(key) == 3
    assert 0 < client.ttl(key) <= 61


def test_without_redis_drfs_own_code_runs(settings):
    assert throttling._script() is None  # the tests' local-memory cache
    caches["default"].clear()
    assert _answers(OursThree, 10) == EXPECTED


def test_the_api_uses_them():
    assert [c.__name__ for c in APIView.throttle_classes] == [
        "AnonRateThrottle",
        "UserRateThrottle",
    ]
    assert all(issubclass(c, throttling.RedisLogMixin) for c in APIView.throttle_classes)
