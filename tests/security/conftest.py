"""Fixtures of the security checks: an operator with an API token, relaxed throttles, and the
whitepaper workflow (PDF host, Jangar stand-in, bucket, eager Celery)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework import throttling

from tests.faults.conftest import private_redis  # noqa: F401 - a redis-server of the test's own
from torghut_site.auth import IssuedToken, api_token_issue
from whitepapers.tests.conftest import (  # noqa: F401 - the whitepaper workflow's fixtures
    control,
    s3_artifacts,
    s3_client,
    workflow,
)
from whitepapers.tests.workflow import PaperHost

RELAXED_RATES = {
    "anon": "100000/min",
    "user": "100000/min",
    "control": "100000/min",
    "webhook": "100000/min",
}


@pytest.fixture
def relaxed_throttles(monkeypatch) -> Iterator[None]:
    """Fuzzing sends thousands of requests a minute: lift the rates (the throttles still run),
    and leave no counters behind for the tests that check throttling."""
    for cls in (
        throttling.SimpleRateThrottle,
        throttling.AnonRateThrottle,
        throttling.UserRateThrottle,
        throttling.ScopedRateThrottle,
    ):
        monkeypatch.setattr(cls, "THROTTLE_RATES", RELAXED_RATES, raising=False)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def operator_token(db) -> IssuedToken:
    """A superuser's API token: every endpoint's permission is granted."""
    user = get_user_model().objects.create_superuser("sec-operator", password="pw-sec-op-1234")
    return api_token_issue(user=user, name="security-tests")


@pytest.fixture
def paper_host() -> Iterator[PaperHost]:
    """A loopback PDF host of the test's own (the PDF-fetching tests reach it under the test-only
    outbound allowance, or prove that production's policy refuses it)."""
    host = PaperHost()
    host.start()
    try:
        yield host
    finally:
        host.stop()
